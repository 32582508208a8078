/**
 * SIGINT and SIGTERM while a repository change is under way. Node's default (die at
 * once) would leave a CVMFS transaction open until the next run; instead the guard runs
 * a synchronous clean-up (abort the transaction, drop our marker and lock) and exits with
 * 128 + the signal number, as a shell reports a command killed by it. While a publish is
 * in flight the signal is held until it ends: interrupting `cvmfs_server publish` half
 * way is worse than waiting for it.
 */
import {constants} from 'node:os'

import type {Logger} from '../log.js'

const SIGNALS = ['SIGINT', 'SIGTERM'] as const
type GuardedSignal = (typeof SIGNALS)[number]
export type Cleanup = (signal: GuardedSignal) => void

/** SignalGuards in force: while there is one, a signal is its business. */
let guards = 0
/** Whether {@link exitOnSignals} put its handlers in place (once per process). */
let exitHandlersInstalled = false

/**
 * For the rest of the process: a signal that arrives outside a {@link SignalGuard} (a
 * download, a merge into a plain directory) exits with 128 + its number through
 * `process.exit`, so that exit handlers run — the download's temp dir is removed
 * (tmp-promise), and execa kills the programs still running. Without it Node.js (or
 * execa's signal-exit, which kills the process again with the signal) dies without
 * them, and the download (up to the whole image) stays in $TMPDIR.
 */
export function exitOnSignals(logger: Logger): void {
  if (exitHandlersInstalled) return
  exitHandlersInstalled = true
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (guards > 0) return
      logger.error(`interrupted by ${signal}`)
      process.exit(128 + constants.signals[signal])
    })
  }
}

export class SignalGuard {
  private cleanup: Cleanup | 'hold'
  private held?: GuardedSignal
  private readonly handler = (signal: GuardedSignal) => {
    if (this.cleanup === 'hold') {
      this.held ??= signal
      this.logger.warn(`${signal} received: stopping once the publish under way is complete`)
      return
    }
    this.exit(signal, this.cleanup)
  }

  /** Start guarding: from now on a signal runs `cleanup` and exits. */
  constructor(
    private readonly logger: Logger,
    cleanup: Cleanup,
  ) {
    this.cleanup = cleanup
    guards++
    for (const signal of SIGNALS) process.on(signal, this.handler)
  }

  /** Whether a signal arrived while held. */
  get signalled(): boolean {
    return this.held !== undefined
  }

  /** Hold signals from now on; `dispose` acts on one that arrived meanwhile. */
  hold(): void {
    this.cleanup = 'hold'
  }

  /** Stop guarding. A signal held meanwhile now runs `cleanup` and exits. */
  dispose(cleanup: Cleanup): void {
    for (const signal of SIGNALS) process.off(signal, this.handler)
    guards--
    if (this.held) this.exit(this.held, cleanup)
  }

  private exit(signal: GuardedSignal, cleanup: Cleanup): never {
    try {
      cleanup(signal)
    } finally {
      this.logger.error(`interrupted by ${signal}`)
      process.exit(128 + constants.signals[signal])
    }
  }
}

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

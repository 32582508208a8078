/**
 * The one logger. The core never writes to the console directly: it is handed a
 * Logger, which writes human lines to a stream (stderr by default) and can be
 * silenced for `--json` output. Progress is drawn in place on a terminal and
 * reduced to occasional plain lines otherwise.
 */
import type {Writable} from 'node:stream'

export type Level = 'debug' | 'info' | 'warn' | 'error'
const rank: Record<Level, number> = {debug: 10, info: 20, warn: 30, error: 40}

export interface LoggerOptions {
  stream?: Writable & {isTTY?: boolean}
  level?: Level
  /** Prefix each line with an ISO timestamp (for unattended runs). */
  timestamps?: boolean
}

export class Logger {
  readonly stream: Writable & {isTTY?: boolean}
  readonly level: Level
  readonly timestamps: boolean
  private progressShown = false
  /** Warnings emitted, so commands can report them in `--json` output. */
  readonly warnings: string[] = []

  constructor(options: LoggerOptions = {}) {
    this.stream = options.stream ?? process.stderr
    this.level = options.level ?? 'info'
    this.timestamps = options.timestamps ?? false
  }

  get interactive(): boolean {
    return Boolean(this.stream.isTTY)
  }

  debug(message: string): void {
    this.write('debug', message)
  }

  info(message: string): void {
    this.write('info', message)
  }

  warn(message: string): void {
    this.warnings.push(message)
    this.write('warn', `warning: ${message}`)
  }

  error(message: string): void {
    this.write('error', `error: ${message}`)
  }

  /** Draw a progress line: in place on a terminal, nothing otherwise (callers log milestones). */
  progress(message: string): void {
    if (!this.interactive || rank[this.level] > rank.info) return
    this.stream.write(`\r\x1b[K${message}`)
    this.progressShown = true
  }

  private clearProgress(): void {
    if (this.progressShown) {
      this.stream.write('\r\x1b[K')
      this.progressShown = false
    }
  }

  private write(level: Level, message: string): void {
    if (rank[level] < rank[this.level]) return
    this.clearProgress()
    const prefix = this.timestamps ? `${new Date().toISOString()} ` : ''
    this.stream.write(`${prefix}${message}\n`)
  }
}

/** A logger that drops everything except what tests want to look at. */
export function silentLogger(): Logger {
  const sink = {write: () => true} as unknown as Writable
  return new Logger({stream: sink, level: 'error'})
}

/** Human-readable byte count: 1.5 MB, 312 kB. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit++
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`
}

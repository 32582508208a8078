/**
 * The one logger. The core never writes to the console directly: it is handed a
 * Logger, which writes human lines to a stream (stderr by default) and can be
 * silenced for `--json` output. Progress is drawn in place on a terminal and
 * reduced to occasional plain lines otherwise.
 */
import {stderrSink, type LogSink} from './output.js'

export type Level = 'debug' | 'info' | 'warn' | 'error'
const rank: Record<Level, number> = {debug: 10, info: 20, warn: 30, error: 40}

export interface LoggerOptions {
  /** Default: stderr (src/output.ts, without Node.js's streams where it is no terminal). */
  stream?: LogSink
  level?: Level
  /** Prefix each line with an ISO timestamp (for unattended runs). */
  timestamps?: boolean
  /**
   * Draw live progress lines (default: on a terminal at level info or debug). Off for
   * `--json` and `--quiet`, and wherever the stream is no terminal: unattended logs get
   * the plain lines only.
   */
  live?: boolean
}

export class Logger {
  readonly stream: LogSink
  readonly level: Level
  readonly timestamps: boolean
  readonly live: boolean
  private progressShown = false
  /** Warnings emitted, so commands can report them in `--json` output. */
  readonly warnings: string[] = []

  constructor(options: LoggerOptions = {}) {
    this.stream = options.stream ?? stderrSink()
    this.level = options.level ?? 'info'
    this.timestamps = options.timestamps ?? false
    this.live = options.live ?? (Boolean(this.stream.isTTY) && rank[this.level] <= rank.info)
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

  /**
   * Draw a progress line in place (only when {@link live}; callers log milestones as
   * lines too). It is cut to the terminal's width: a line that wraps cannot be redrawn.
   */
  progress(message: string): void {
    if (!this.live) return
    const columns = this.stream.columns
    const line = columns && columns > 1 && message.length > columns - 1 ? `${message.slice(0, columns - 2)}…` : message
    this.stream.write(`\r\x1b[K${line}`)
    this.progressShown = true
  }

  /** Erase the progress line, if one is shown. */
  clearProgress(): void {
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
  return new Logger({stream: {write: () => {}}, level: 'error'})
}

/** The first `limit` of `items` for a message: `a, b, c and 4 more`. */
export function someOf(items: readonly string[], limit = 5): string {
  return items.slice(0, limit).join(', ') + (items.length > limit ? ` and ${items.length - limit} more` : '')
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

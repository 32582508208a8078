/**
 * The one place test helpers run programs: argument arrays, never a shell
 * string; failures name the command, its exit code and the tail of stderr.
 */
import {execa} from 'execa'
import {TOOL_PACKAGES} from './tools.js'

/** What a finished program left behind. */
export interface ExecResult {
  stdout: string
  stderr: string
  exitCode: number
}

/** Options for {@link exec}. */
export interface ExecOptions {
  /** Extra environment variables (merged over `process.env`). */
  env?: Record<string, string>
  cwd?: string
  input?: string | Buffer
  /** Kill the program after this many milliseconds (default 120 s). */
  timeoutMs?: number
  /** When true (default) a non-zero exit throws; when false it is returned. */
  reject?: boolean
}

const STDERR_TAIL_LINES = 20

function notFound(cmd: string): string {
  const pkg = TOOL_PACKAGES[cmd]
  return pkg ? `${cmd} not found on PATH: install the Debian package ${pkg} (see .ci/run)` : `${cmd} not found on PATH`
}

/** Last lines of a program's output, for error messages. */
export function tail(text: string, lines = STDERR_TAIL_LINES): string {
  const all = text.trimEnd().split('\n')
  return all.slice(-lines).join('\n')
}

/** Quote a command line for humans (error messages only, never for a shell). */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')
}

/**
 * Run `cmd args…` and collect its output as text.
 *
 * @throws Error naming the command line, exit code and stderr tail when the
 *   program cannot be started, times out, or (unless `reject: false`) exits non-zero.
 */
export async function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const result = await execa(cmd, args, {
    env: opts.env,
    cwd: opts.cwd,
    input: opts.input,
    timeout: opts.timeoutMs ?? 120_000,
    reject: false,
    stripFinalNewline: false,
  })
  const line = formatCommand(cmd, args)
  if (result.failed && result.exitCode === undefined) {
    // Could not start, or killed (timeout / signal): never a "normal" result.
    const why = result.timedOut ? `timed out after ${opts.timeoutMs ?? 120_000} ms` : result.code === 'ENOENT' ? notFound(cmd) : result.shortMessage
    throw new Error(`${line}: ${why}\n${tail(String(result.stderr ?? ''))}`.trimEnd())
  }
  const out: ExecResult = {stdout: String(result.stdout), stderr: String(result.stderr), exitCode: result.exitCode ?? -1}
  if (out.exitCode !== 0 && opts.reject !== false) {
    throw new Error(`${line} exited with ${out.exitCode}:\n${tail(out.stderr || out.stdout)}`)
  }
  return out
}

/**
 * Run `cmd args…` and return stdout as raw bytes (for output that may hold
 * file names that are not UTF-8 or binary data).
 */
export async function execBuffer(cmd: string, args: readonly string[], opts: Omit<ExecOptions, 'input'> = {}): Promise<Buffer> {
  const result = await execa(cmd, args, {
    env: opts.env,
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 120_000,
    reject: false,
    encoding: 'buffer',
  })
  const line = formatCommand(cmd, args)
  const stderr = Buffer.from(result.stderr ?? new Uint8Array()).toString('utf8')
  if (result.exitCode === undefined) {
    const why = result.code === 'ENOENT' ? notFound(cmd) : result.shortMessage
    throw new Error(`${line}: ${why}\n${tail(stderr)}`.trimEnd())
  }
  if (result.exitCode !== 0 && opts.reject !== false) throw new Error(`${line} exited with ${result.exitCode}:\n${tail(stderr)}`)
  return Buffer.from(result.stdout)
}

/**
 * The one place that runs subprocesses (skopeo, cvmfs_server, setfattr, mknod, …).
 * Argument arrays only, never a shell string. Every failure becomes an
 * ExternalError naming the command, its exit code and the tail of its stderr.
 * execa is imported when the first program runs, not when a command starts (it takes
 * longer to load than Node.js takes to start): commands that run nothing never load it.
 * Nor node:child_process (see builtins.ts), loaded by the first call.
 */
import {childProcess} from './builtins.js'
import type {Readable} from 'node:stream'

import type {Options as ExecaOptions} from 'execa'

import {ExternalError} from './errors.js'
import type {Logger} from './log.js'

export interface RunOptions {
  logger?: Logger
  /** Bytes for stdin, or a stream piped to it (a tar for `cvmfs_server ingest -t -`). */
  input?: string | Buffer | Readable
  env?: Record<string, string | undefined>
  cwd?: string
  /** Abort the process (SIGTERM) when this signal fires. */
  signal?: AbortSignal
  /** What to tell the user when the program is not installed. */
  missingHint?: string
  /** Exit codes that are not failures (the result carries the code). */
  okExitCodes?: number[]
  /** Keep stdout as raw bytes (manifests are hashed byte for byte). */
  binaryStdout?: boolean
  /** An open file descriptor of ours the program gets as its fd 3 (`flock 3` locks our open file). */
  fd3?: number
}

export interface RunResult {
  stdout: string
  /** Raw stdout, when `binaryStdout` was asked for. */
  stdoutBytes?: Buffer
  stderr: string
  exitCode: number
}

/** Lines of stderr kept in error messages. */
const TAIL_LINES = 15

export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.trimEnd().split('\n')
  return all.slice(-lines).join('\n')
}

/** Quote an argument for display in a log line (never executed by a shell). */
function showArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`
}

export function showCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map(showArg).join(' ')
}

/**
 * Load execa now, for a `run` to come: called while a short program runs (the manifest's
 * inspection), the ~30 ms it takes to load pass while this process waits anyway, instead
 * of before the copy that needs it.
 */
export function preloadExeca(): void {
  import('./vendor/execa.js').catch(() => {})
}

/** Run `file args…` and return its output; throw ExternalError on failure. */
export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const display = showCommand(file, redact(args))
  options.logger?.debug(`$ ${display}`)
  const execaOptions: ExecaOptions = {
    reject: false,
    stripFinalNewline: false,
    input: options.input,
    env: options.env,
    cwd: options.cwd,
    cancelSignal: options.signal,
    encoding: options.binaryStdout ? 'buffer' : 'utf8',
    // Without input, stdin is /dev/null, never a pipe left open: a program that asks a
    // question (cvmfs_server publish: "proceed anyway? (y/N)") reads end-of-file and goes
    // on with its default answer instead of waiting forever.
    // execa hands a number in `stdio` to child_process.spawn, which shares that open fd with
    // the child (Node documents it); execa's types admit only the numbers 3 to 9.
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...(options.fd3 === undefined ? [] : [options.fd3])] as unknown as ExecaOptions['stdio'],
  }
  const {execa} = await import('./vendor/execa.js')
  const result = await execa(file, [...args], execaOptions)
  const stdoutBytes = options.binaryStdout ? Buffer.from(result.stdout as unknown as Uint8Array) : undefined
  const stdout = stdoutBytes ? stdoutBytes.toString('utf8') : String(result.stdout ?? '')
  const stderr = options.binaryStdout ? Buffer.from(result.stderr as unknown as Uint8Array).toString('utf8') : String(result.stderr ?? '')
  const code = (result as {code?: string}).code
  if (code === 'ENOENT' || (result.failed && result.exitCode === undefined && /ENOENT/.test(String(result.message)))) {
    throw missingProgram(file, display, options.missingHint)
  }
  const exitCode = result.exitCode ?? -1
  if (result.failed && !(options.okExitCodes ?? []).includes(exitCode)) {
    throw programFailed(display, {exitCode, signal: result.signal, stdout, stderr, binaryStdout: options.binaryStdout})
  }
  return {stdout, stdoutBytes, stderr, exitCode}
}

/** The error for a program that is not installed. */
function missingProgram(file: string, display: string, hint: string | undefined): ExternalError {
  return new ExternalError(`${file} is not installed or not on PATH`, {command: display}, {code: 'E_MISSING_PROGRAM', hint: hint ?? `Install ${file} and try again.`})
}

/**
 * The error for a program that failed: how it ended, and what it said last — its stdout,
 * then its stderr (cvmfs_server writes its questions and reports to stdout, shell errors to
 * stderr); stderr alone for binary output.
 */
function programFailed(
  display: string,
  ended: {exitCode: number; signal?: string | null; stdout: string; stderr: string; binaryStdout?: boolean},
): ExternalError {
  const {exitCode, signal, stdout, stderr} = ended
  const how = signal ? `was killed by ${signal}` : `exited with code ${exitCode}`
  const said = stdout.trim() && stderr.trim() && !ended.binaryStdout ? `${stdout.trimEnd()}\n${stderr}` : stderr || stdout
  const stderrTail = tail(said)
  return new ExternalError(`${display} ${how}${stderrTail ? `:\n${indent(stderrTail)}` : ''}`, {command: display, exitCode, stderrTail})
}

/**
 * Run a short program that reads nothing (the lock's `flock`, skopeo's inspections,
 * getfattr and setfattr), through Node's own spawn: on the way to a command's first
 * request, loading execa would cost more than the program (~30 ms here; it loads later,
 * while the program runs, if a longer one needs it), and a first execa call costs ~20 ms
 * more of its own. Same results and errors as `run`.
 */
export async function runBrief(
  file: string,
  args: readonly string[],
  options: Pick<RunOptions, 'logger' | 'missingHint' | 'okExitCodes' | 'fd3' | 'signal' | 'binaryStdout' | 'env'> = {},
): Promise<RunResult> {
  const display = showCommand(file, redact(args))
  options.logger?.debug(`$ ${display}`)
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe']
  if (options.fd3 !== undefined) stdio.push(options.fd3)
  options.signal?.throwIfAborted()
  const ended = await new Promise<{exitCode: number | null; signal: NodeJS.Signals | null; out: Buffer; stderr: string; error?: NodeJS.ErrnoException}>((done) => {
    // As execa does: `env` adds to (or, undefined, removes from) this process's environment.
    const child = childProcess().spawn(file, [...args], {stdio, env: options.env && {...process.env, ...options.env}})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk))
    const stop = () => child.kill('SIGTERM')
    options.signal?.addEventListener('abort', stop, {once: true})
    const finish = (result: {exitCode: number | null; signal: NodeJS.Signals | null; error?: NodeJS.ErrnoException}) => {
      options.signal?.removeEventListener('abort', stop)
      done({...result, out: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8')})
    }
    child.once('error', (error: NodeJS.ErrnoException) => finish({exitCode: null, signal: null, error}))
    child.once('close', (exitCode, signal) => finish({exitCode, signal}))
  })
  const {exitCode, signal, out, stderr, error} = ended
  const stdout = out.toString('utf8')
  if (error?.code === 'ENOENT') throw missingProgram(file, display, options.missingHint)
  if (error) throw new ExternalError(`${display} could not be started: ${error.message}`, {command: display})
  // Stopped through its signal: the caller stopped it, for the reason it gave.
  if (options.signal?.aborted) throw options.signal.reason
  const code = exitCode ?? -1
  if (code !== 0 && !(options.okExitCodes ?? []).includes(code)) throw programFailed(display, {exitCode: code, signal, stdout, stderr, binaryStdout: options.binaryStdout})
  return {stdout, stdoutBytes: options.binaryStdout ? out : undefined, stderr, exitCode: code}
}

/**
 * Run `file args…` synchronously, for the one place that cannot wait for the event
 * loop: a signal handler aborting a transaction before the process exits. Never
 * throws; the caller reports a failure (output: stdout, then stderr).
 */
export function runSync(file: string, args: readonly string[], options: {logger?: Logger} = {}): {exitCode: number; output: string} {
  options.logger?.debug(`$ ${showCommand(file, redact(args))}`)
  // Node's own spawnSync: a signal handler cannot wait for execa to load.
  const result = childProcess().spawnSync(file, [...args], {stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024})
  const output = result.error ? result.error.message : `${result.stdout?.toString('utf8') ?? ''}${result.stderr?.toString('utf8') ?? ''}`
  return {exitCode: result.status ?? -1, output: tail(output)}
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n')
}

/** Hide credentials (`--creds user:pass`) from logs and error messages. */
function redact(args: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (/^--(src-|dest-)?creds$/.test(arg) && i + 1 < args.length) {
      out.push(arg, '***')
      i++
    } else if (/^--(src-|dest-)?creds=/.test(arg)) {
      out.push(`${arg.slice(0, arg.indexOf('=') + 1)}***`)
    } else {
      out.push(arg)
    }
  }
  return out
}

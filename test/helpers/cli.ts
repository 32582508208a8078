/**
 * Run the built CLI (bin/run.js → dist/) as a user would: a separate node process.
 * `npm test` builds first, so dist/ is current.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {constants} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {exec, type ExecResult} from './exec.js'

export const TOP = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = join(TOP, 'bin', 'run.js')

/** `cvmfs-oci ARGS…`; never throws on a non-zero exit (tests assert on it). */
export async function cli(args: string[], options: {env?: Record<string, string>; timeoutMs?: number} = {}): Promise<ExecResult> {
  if (!existsSync(join(TOP, 'dist', 'cli', 'resolve-main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does it) before the tests')
  }
  return exec(process.execPath, [BIN, ...args], {
    reject: false,
    timeoutMs: options.timeoutMs ?? 120_000,
    // No configured roots leak in from the machine running the tests.
    env: {CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: '', ...options.env},
  })
}

/** `cvmfs-oci …` that must succeed: returns stdout, throws with stderr otherwise. */
export async function cliOk(args: string[], options?: {env?: Record<string, string>}): Promise<string> {
  const result = await cli(args, options)
  if (result.exitCode !== 0) {
    throw new Error(`cvmfs-oci ${args.join(' ')} exited with ${result.exitCode}:\n${result.stderr}${result.stdout}`)
  }
  return result.stdout
}

/** A `cvmfs-oci` started in the background: its pid, its output so far, and its end. */
export interface RunningCli {
  child: ChildProcess
  pid: number
  stdout(): string
  stderr(): string
  /** Resolves when it ends: the exit code, or 128 + the number of the signal that killed it. */
  exited: Promise<ExecResult>
}

/** Start `cvmfs-oci ARGS…` without waiting for it (to run several at once, stop or kill one). */
export function startCli(args: string[], options: {env?: Record<string, string>} = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {...process.env, CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: '', ...options.env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return watch(child)
}

/** Collect the output of a program started with piped stdout and stderr, and its end. */
export function watch(child: ChildProcess): RunningCli {
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<ExecResult>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({stdout, stderr, exitCode: code ?? 128 + (signal ? constants.signals[signal] : 0)}))
  })
  return {child, pid: child.pid!, stdout: () => stdout, stderr: () => stderr, exited}
}

/** Poll `condition` every 20 ms until it holds; throw `what` (and `detail()`) after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, detail: () => string = () => '', timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}${detail() ? `:\n${detail()}` : ''}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** An error message as printed by oclif, with its line wrapping (`\n ›   `) undone; the spaces it kept stay. */
export function unwrapped(stderr: string): string {
  return stderr.replace(/\n › {3}/g, '')
}

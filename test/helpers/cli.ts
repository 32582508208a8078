/**
 * Run the built CLI (bin/run.js → dist/) as a user would: a separate node process.
 * `npm test` builds first, so dist/ is current.
 */
import {existsSync} from 'node:fs'
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

/** An error message as printed by oclif, with its line wrapping (`\n ›   `) undone; the spaces it kept stay. */
export function unwrapped(stderr: string): string {
  return stderr.replace(/\n › {3}/g, '')
}

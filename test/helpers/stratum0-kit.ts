/**
 * Throw-away CernVM-FS 2.12 stratum-0 repositories, their client mounts and DUCC
 * conversions, through the real components kit (../shared/testbed/, its README.md):
 * `cvmfs-stratum0.sh start|client|stop` and `cvmfs_ducc convert-single-image`.
 * Repositories are machine-global: name them with {@link uniqueRepoName} and stop them
 * in afterAll.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {TOP} from './cli.js'
import {exec} from './exec.js'
import {whichTool} from './tools.js'

/** The kit, beside the checkout (`../shared/testbed`), as on CI. */
export const KIT_DIR = join(TOP, '..', 'shared', 'testbed')
const STRATUM0 = join(KIT_DIR, 'cvmfs-stratum0.sh')

/** Fail (never skip) when the kit or the CernVM-FS it installs is missing. */
export function requireStratum0Kit(): void {
  const problems: string[] = []
  if (!existsSync(STRATUM0)) problems.push(`${STRATUM0} not found: the real components kit must sit beside the checkout (../shared/testbed)`)
  for (const tool of ['cvmfs_server', 'cvmfs2', 'cvmfs_talk', 'cvmfs_ducc']) {
    if (whichTool(tool) === undefined) problems.push(`${tool} not found on PATH: run \`${join(KIT_DIR, 'install.sh')} cvmfs\` as root`)
  }
  if (process.getuid?.() !== 0) problems.push('the kit needs root (cvmfs_server, FUSE and overlay mounts)')
  if (problems.length > 0) throw new Error(problems.join('\n'))
}

/** `<prefix>-<random>.test`, a repository name no other test or helper uses. */
export function uniqueRepoName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}.test`
}

/** `cvmfs-stratum0.sh start NAME`: a new repository (~4 s); returns its directory, `/cvmfs/NAME`. */
export async function startStratum0(name: string): Promise<string> {
  return (await exec(STRATUM0, ['start', name], {timeoutMs: 120_000})).stdout.trim()
}

/** `cvmfs-stratum0.sh client NAME MOUNTPOINT`: a read-only client mount, as a worker node has; returns its socket. */
export async function mountClient(name: string, mountPoint: string): Promise<string> {
  return (await exec(STRATUM0, ['client', name, mountPoint], {timeoutMs: 120_000})).stdout.trim()
}

/** Make the client see the newest revision now (`cvmfs_talk remount sync`). */
export async function remountClient(socket: string): Promise<void> {
  await exec('cvmfs_talk', ['-p', socket, 'remount', 'sync'])
}

/** `cvmfs-stratum0.sh stop NAME`: unmounts the client, removes the repository (a no-op for an unknown name). */
export async function stopStratum0(name: string): Promise<void> {
  await exec(STRATUM0, ['stop', name], {timeoutMs: 120_000})
}

/**
 * DUCC converts one image into the repository (`http://` for a plain-HTTP registry):
 * `cvmfs_ducc -t TMPDIR convert-single-image URL NAME` (~40 s for a small image here).
 */
export async function duccConvert(tmpDir: string, imageUrl: string, name: string): Promise<void> {
  await exec('cvmfs_ducc', ['-t', tmpDir, 'convert-single-image', imageUrl, name], {timeoutMs: 300_000})
}

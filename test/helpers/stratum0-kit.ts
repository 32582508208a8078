/**
 * Throw-away CernVM-FS 2.12 stratum-0 repositories, their client mounts and DUCC
 * conversions, through the real components kit (../shared/testbed/, its README.md):
 * `cvmfs-stratum0.sh start|client|stop` and `cvmfs_ducc convert-single-image`.
 * Repositories are machine-global: name them with {@link uniqueRepoName} and stop them
 * in afterAll.
 */
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

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

/** A second client mount of a kit repository; see {@link mountExtraClient}. */
export interface ExtraClient {
  mountPoint: string
  socket: string
  /** Unmount it (lazily when busy) and remove its state (idempotent). */
  unmount(): Promise<void>
}

/**
 * One more plain client of a kit repository, beside the kit's own one (`client`, which
 * must be mounted first: its configuration file is the model), as a second worker node
 * with another configuration would have: the kit's file with its own cache, sockets and
 * log, plus `config` lines. `personality` starts cvmfs2 under `setarch` (e.g. `i686`, the
 * 32-bit personality of an x86_64 machine), which changes what `uname -m` says to it.
 */
export async function mountExtraClient(
  name: string,
  mountPoint: string,
  options: {config?: Record<string, string>; personality?: string} = {},
): Promise<ExtraClient> {
  const kitSocket = (await exec(STRATUM0, ['env', name])).stdout.match(/^CVMFS_KIT_CLIENT_SOCKET=(.*)$/m)?.[1]
  if (!kitSocket) throw new Error(`mountExtraClient: ${name} has no kit client mount yet (mountClient first)`)
  const kitConfig = join(dirname(dirname(kitSocket)), `${name}.conf`)
  const state = await mkdtemp(join(tmpdir(), 'cvmfs-oci-client-'))
  const own: Record<string, string> = {
    CVMFS_CACHE_BASE: join(state, 'cache'),
    CVMFS_RELOAD_SOCKETS: join(state, 'run'),
    CVMFS_TALK_SOCKET: join(state, 'run', 'socket'),
    CVMFS_USYSLOG: join(state, 'run', 'cvmfs.log'),
    CVMFS_MOUNT_DIR: dirname(mountPoint),
    ...options.config,
  }
  const lines = (await readFile(kitConfig, 'utf8')).split('\n').filter((line) => !Object.keys(own).some((key) => line.startsWith(`${key}=`)))
  const config = join(state, `${name}.conf`)
  await writeFile(config, [...lines, ...Object.entries(own).map(([key, value]) => `${key}=${value}`), ''].join('\n'))
  for (const dir of [own.CVMFS_CACHE_BASE!, own.CVMFS_RELOAD_SOCKETS!, mountPoint]) await mkdir(dir, {recursive: true})
  const cvmfs2 = ['cvmfs2', '-o', `config=${config},fsname=cvmfs2,allow_other`, name, mountPoint]
  await exec(options.personality ? 'setarch' : cvmfs2[0]!, options.personality ? [options.personality, ...cvmfs2] : cvmfs2.slice(1), {timeoutMs: 120_000})
  let mounted = true
  return {
    mountPoint,
    socket: own.CVMFS_TALK_SOCKET!,
    unmount: async () => {
      if (mounted && (await exec('umount', [mountPoint], {reject: false})).exitCode !== 0) await exec('umount', ['-l', mountPoint], {reject: false})
      mounted = false
      await rm(state, {recursive: true, force: true})
    },
  }
}

/** The repository's current revision, from the manifest its stratum-0 serves (`S<revision>` line of .cvmfspublished). */
export async function publishedRevision(name: string): Promise<number> {
  const url = (await exec(STRATUM0, ['env', name])).stdout.match(/^CVMFS_KIT_STRATUM0=(.*)$/m)?.[1]
  if (!url) throw new Error(`publishedRevision: no stratum-0 URL for ${name}`)
  const response = await fetch(`${url}/.cvmfspublished`)
  if (!response.ok) throw new Error(`publishedRevision: ${url}/.cvmfspublished answered ${response.status}`)
  const text = Buffer.from(await response.arrayBuffer()).toString('latin1')
  const line = text.split('\n--\n')[0]!.split('\n').find((l) => /^S\d+$/.test(l))
  if (!line) throw new Error(`publishedRevision: no revision line in ${url}/.cvmfspublished`)
  return Number(line.slice(1))
}

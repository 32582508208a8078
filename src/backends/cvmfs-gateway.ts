/**
 * What a publisher of a CVMFS repository needs to know to work beside other publishers
 * through a repository gateway (`CVMFS_UPSTREAM_STORAGE=gw,…` in its server.conf), as the
 * real gateway 2.12 behaves (../shared/testbed/README.md, "Gateway"):
 *
 * - a lease is one path and an overlapping one is refused (`Path busy`): the gateway's
 *   list of leases (`GET <gateway>/leases`) says who holds what, for the messages of a
 *   publisher waiting for one;
 * - a publisher's view (`/cvmfs/NAME`, over its read-only mount) can be behind the newest
 *   published revision, even right after its own publish; a transaction based on an older
 *   revision than the newest drops what others published under its lease since. So a
 *   transaction is used only when its view is the newest revision (`mountedHead` equals
 *   `publishedHead`, read once the lease is held);
 * - what a transaction writes outside its lease is dropped without a word: before
 *   publishing, the union mount's upper directory (`<spool>/scratch/current`) says what
 *   was written, and everything must be inside the lease; after publishing, it is read
 *   back from a view at least as new as the publish.
 */
import {join} from 'node:path'

import {ExternalError} from '../errors.js'
import {run} from '../exec.js'
import {lstat, readdir} from '../fs-promises.js'
import type {Logger} from '../log.js'
import {aboveScope, inScope} from './scope.js'

/** A revision of the repository: its root catalog and number. */
export interface Head {
  rootHash: string
  revision: number
}

/** How long a request to the stratum-0 or the gateway may take. */
const HTTP_TIMEOUT_MS = 20_000

/** The newest published revision, from the manifest the stratum-0 serves (`C` and `S` lines). */
export async function publishedHead(stratum0: string): Promise<Head> {
  const url = `${stratum0.replace(/\/+$/, '')}/.cvmfspublished`
  let text: string
  try {
    const response = await fetch(url, {signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), headers: {'Cache-Control': 'no-cache'}})
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    text = Buffer.from(await response.arrayBuffer()).toString('latin1')
  } catch (error) {
    throw new ExternalError(
      `cannot read the newest revision from ${url}: ${(error as Error).message}`,
      {command: `GET ${url}`},
      {code: 'E_STRATUM0_UNREACHABLE', hint: 'cvmfs-oci checks that a gateway publisher works on the newest revision: CVMFS_STRATUM0 of server.conf must be reachable from this publisher.'},
    )
  }
  const head = parseManifest(text)
  if (!head) throw new ExternalError(`${url} is not a CernVM-FS manifest`, {command: `GET ${url}`}, {code: 'E_STRATUM0_UNREACHABLE'})
  return head
}

/** The root catalog hash and revision of a `.cvmfspublished` (its lines before the signature). */
export function parseManifest(text: string): Head | undefined {
  const lines = text.split('\n--\n')[0]!.split('\n')
  const rootHash = lines.find((l) => /^C[0-9a-f]{40,}/.test(l))?.slice(1).trim()
  const revision = lines.find((l) => /^S\d+$/.test(l))?.slice(1)
  return rootHash && revision ? {rootHash, revision: Number(revision)} : undefined
}

/** The revision the publisher's read-only mount shows (its magic extended attributes). */
export async function mountedHead(spoolDir: string, logger: Logger): Promise<Head> {
  const rdonly = join(spoolDir, 'rdonly')
  const attribute = async (attr: string) =>
    (await run('getfattr', ['--absolute-names', '--only-values', '-n', `user.${attr}`, rdonly], {logger, missingHint: 'getfattr comes with the attr package.'})).stdout.trim()
  return {rootHash: await attribute('root_hash'), revision: Number(await attribute('revision'))}
}

/** A lease the gateway lists. */
export interface GatewayLease {
  /** `NAME/sub/path` */
  path: string
  hostname?: string
  expires?: string
}

/**
 * The leases overlapping `leasePath` (`NAME` or `NAME/sub`): the one asked for, one above
 * or one below it. `undefined` when the gateway does not say (older gateways, no access).
 */
export async function overlappingLeases(gatewayUrl: string, leasePath: string): Promise<GatewayLease[] | undefined> {
  try {
    const response = await fetch(`${gatewayUrl}/leases`, {signal: AbortSignal.timeout(HTTP_TIMEOUT_MS)})
    if (!response.ok) return undefined
    const body = (await response.json()) as {data?: Record<string, {path?: string; hostname?: string; expires?: string}>}
    const leases = Object.entries(body.data ?? {}).map(([path, lease]) => ({path: lease.path ?? path, hostname: lease.hostname, expires: lease.expires}))
    const overlaps = (x: string, y: string) => x === y || x.startsWith(`${y}/`) || y.startsWith(`${x}/`)
    return leases.filter((lease) => overlaps(lease.path, leasePath))
  } catch {
    return undefined
  }
}

/** One entry of what a transaction changed. */
export interface Written {
  path: string
  type: 'file' | 'directory' | 'symlink' | 'other'
}

/** What a transaction changed, from its union mount's upper directory. */
export interface Changes {
  /** Files, directories and links written inside the scope. */
  written: Written[]
  /** Paths deleted inside the scope (overlayfs whiteouts). */
  deleted: string[]
  /** Everything written or deleted outside the scope (a gateway drops it). */
  outside: string[]
}

/**
 * Walk the upper directory of the union mount (`<spool>/scratch/current`): every entry is
 * something the transaction wrote (a whiteout, a character device 0/0, a deletion), or a
 * directory above one, copied up unchanged. Directories above the scope are expected (a
 * write below the scope copies them up); anything else outside the scope is not.
 */
export async function scanChanges(spoolDir: string, scope: string | undefined): Promise<Changes> {
  const upper = join(spoolDir, 'scratch', 'current')
  const changes: Changes = {written: [], deleted: [], outside: []}
  const walk = async (rel: string): Promise<void> => {
    let entries
    try {
      entries = await readdir(join(upper, rel), {withFileTypes: true})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      throw error
    }
    for (const entry of entries) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`
      const whiteout = entry.isCharacterDevice() && (await lstat(join(upper, path))).rdev === 0
      if (entry.isDirectory() && aboveScope(path, scope)) {
        await walk(path)
        continue
      }
      if (!inScope(path, scope)) {
        changes.outside.push(path)
        continue
      }
      if (whiteout) {
        changes.deleted.push(path)
        continue
      }
      changes.written.push({path, type: entry.isDirectory() ? 'directory' : entry.isSymbolicLink() ? 'symlink' : entry.isFile() ? 'file' : 'other'})
      if (entry.isDirectory()) await walk(path)
    }
  }
  await walk('')
  return changes
}

/**
 * Whether a transaction without a lease to keep (a stratum-0 of its own) changed anything:
 * its upper directory has an entry. Only `written` is filled, with at most that one entry.
 */
export async function anyChange(spoolDir: string): Promise<Changes> {
  const entries = await readdir(join(spoolDir, 'scratch', 'current')).catch(() => [] as string[])
  return {written: entries.slice(0, 1).map((path) => ({path, type: 'other'})), deleted: [], outside: []}
}

/** What of `written` the repository at `root` does not hold (missing, or of another type). */
export async function missingFrom(root: string, written: readonly Written[]): Promise<string[]> {
  const missing: string[] = []
  for (const {path, type} of written) {
    const info = await lstat(join(root, path)).catch(() => undefined)
    const found = !info ? undefined : info.isDirectory() ? 'directory' : info.isSymbolicLink() ? 'symlink' : info.isFile() ? 'file' : 'other'
    if (found !== type) missing.push(path)
  }
  return missing
}

/**
 * From an overlay upper directory (see overlay-mount.ts) to `cvmfs_server ingest` calls,
 * and the few short transactions for what ingest cannot do. A change goes out as:
 *
 *  1. one call deleting every whiteout and opaque directory (`-d PATH`, repeated) — or,
 *     when one of those paths holds a `:`, one transaction deleting them all:
 *     `cvmfs_server ingest` joins its `-d` paths with `:` and splits them again, so a path
 *     with a `:` (every public link `<registry>/<repository>:<tag>`, its metadata, a
 *     registry with a port) is silently not deleted;
 *  2. one call per new flat root, a tar of it (its `.cvmfscatalog` included: a nested
 *     catalog);
 *  3. the extended attributes of what (2) sent, set in one short transaction: CernVM-FS
 *     2.12's tar ingestion drops every xattr (`security.capability`, `user.*`), in any tar
 *     header form, and keeps them in transactions;
 *  4. one call per top-level directory with anything else in it (not sent with a flat
 *     root), in the order readers need: `.flat`, `.metadata`, `.multiarch` (the platforms of
 *     multi-platform names), the registry directories (public links), `podmanStore`
 *     (each followed by an xattr transaction if it carried any; none does today).
 *
 * Each call is its own publish, so a reader sees a flat root, with its attributes, before
 * any link to it.
 *
 * No directory is left for `cvmfs_server ingest` to make up: it makes a missing base
 * directory (`-b`) and its missing parents, and the root of a nested catalog that a
 * `.cvmfscatalog` in the tar starts in a directory the tar has no entry for, with owner
 * and group 4294967295 (-1). No overlay can copy such a directory up (EOVERFLOW, or EACCES
 * even for root), so no transaction or later ingest could ever write below it. A call's
 * base is therefore the topmost directory that does not exist yet on the way to what it
 * sends, and every tar starts with an entry for its base (`./`, mode and owner from the
 * upper directory; for a base that exists, cvmfs keeps the directory as it is).
 */
import {join, posix, relative} from 'node:path'

import {UserError} from '../errors.js'
import {lstat, readdir} from '../fs-promises.js'
import {FLAT_DIR, METADATA_DIR, MULTIARCH_DIR} from '../layout/paths.js'
import type {Logger} from '../log.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {readXattrTree, type XattrTable} from '../unpack/xattrs.js'

/** Extended attributes overlayfs keeps for itself on an upper directory: never the change's. */
const OVERLAY_XATTR = 'trusted.overlay.'

export interface IngestSend {
  /** The directory in the upper directory that is packed (the base directory's copy). */
  dir: string
  /** Repository-relative base directory (`-b`). */
  base: string
  /** Paths relative to `dir` left out of the tar (and everything below them). */
  exclude: (rel: string) => boolean
}

export interface IngestStep {
  /** `ingest -d PATH…` */
  delete?: string[]
  send?: IngestSend
  /** One transaction: delete these paths, then set these extended attributes (repository-relative path → name → value). */
  transaction?: {remove: string[]; xattrs: XattrTable}
  /** The new flat roots a failed `transaction` step leaves without their attributes. */
  flatRoots?: string[]
}

interface Scan {
  deletions: string[]
  opaque: Set<string>
  flatRoots: string[]
  /** Top-level directories holding something to send. */
  touched: Set<string>
}

/** Plan the ingest calls for the change held in `upper`, made over the repository at `lower`. */
export async function planIngest(upper: string, lower: string, logger: Logger): Promise<IngestStep[]> {
  const xattrs = await readXattrTree(upper, logger)
  const scan: Scan = {deletions: [], opaque: new Set(), flatRoots: [], touched: new Set()}
  const isOpaque = (rel: string) => xattrs.get(join(upper, rel))?.get('trusted.overlay.opaque')?.toString() === 'y'
  const inLower = (rel: string) => lstat(join(lower, rel)).then(() => true, () => false)

  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(upper, rel))).sort()) {
      const child = rel === '' ? name : `${rel}/${name}`
      const info = await lstat(join(upper, child))
      const top = child.split('/')[0]!
      if (info.isCharacterDevice() && info.rdev === 0) {
        scan.deletions.push(child)
        continue
      }
      if (rel === '' && !info.isDirectory()) {
        throw new UserError(`ingest cannot write ${child} at the top of the repository (cvmfs_server ingest needs a base directory)`, {code: 'E_INGEST_TOP_LEVEL'})
      }
      if (info.isDirectory()) {
        const opaque = isOpaque(child)
        if (opaque) {
          scan.deletions.push(child)
          scan.opaque.add(child)
        }
        const fresh = opaque || !(await inLower(child))
        if (/^\.flat\/[0-9a-f]{2}\/[0-9a-f]{64}$/.test(child) && fresh) {
          scan.flatRoots.push(child)
          continue
        }
        if (fresh && rel !== '') scan.touched.add(top)
        await walk(child)
      } else {
        scan.touched.add(top)
      }
    }
  }
  await walk('')

  const steps: IngestStep[] = []
  // Deleting below an opaque directory is implied by deleting the directory itself.
  const deletions = scan.deletions.filter((path) => !scan.deletions.some((other) => other !== path && path.startsWith(`${other}/`)))
  if (deletions.some((path) => path.includes(':'))) steps.push({transaction: {remove: deletions, xattrs: new Map()}})
  else if (deletions.length > 0) steps.push({delete: deletions})
  // Directories that exist when a call runs: the repository's (less what step 1 deletes), and what earlier calls made.
  const made = new Set<string>()
  const deleted = (rel: string) => deletions.some((d) => rel === d || rel.startsWith(`${d}/`))
  const exists = async (rel: string) => made.has(rel) || (!deleted(rel) && (await inLower(rel)))
  const plan = async (target: string, skip: (path: string) => boolean): Promise<IngestStep[]> => {
    const {send, sent} = await sendStep(upper, target, skip, exists)
    for (let dir = target; dir !== posix.dirname(send.base); dir = posix.dirname(dir)) made.add(dir)
    const carried = carriedXattrs(xattrs, upper, sent)
    return carried.size > 0 ? [{send}, {transaction: {remove: [], xattrs: carried}}] : [{send}]
  }

  const flatXattrs: XattrTable = new Map()
  for (const flat of scan.flatRoots) {
    const [send, fix] = await plan(flat, () => false)
    steps.push(send!)
    for (const [path, attrs] of fix?.transaction?.xattrs ?? []) flatXattrs.set(path, attrs)
  }
  if (flatXattrs.size > 0) steps.push({transaction: {remove: [], xattrs: flatXattrs}, flatRoots: scan.flatRoots})
  const skipped = [...scan.deletions.filter((d) => !scan.opaque.has(d)), ...scan.flatRoots]
  const skip = (path: string) => skipped.some((s) => path === s || path.startsWith(`${s}/`))
  // Anything below `rel` not in the repository yet? (Directories that exist, or went with a
  // flat root, do not count: an ingest would not change them.)
  const unsent = async (rel: string): Promise<boolean> => {
    for (const entry of await readdir(join(upper, rel), {withFileTypes: true})) {
      const child = `${rel}/${entry.name}`
      if (skip(child)) continue
      if (!entry.isDirectory() || !(await exists(child)) || (await unsent(child))) return true
    }
    return false
  }
  for (const top of [...scan.touched].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))) {
    if (await unsent(top)) steps.push(...(await plan(top, skip)))
  }
  return steps
}

/**
 * The call sending the directory `target` (repository-relative), less what `skip` names:
 * based on the topmost directory on the way to it that does not exist yet (see above).
 * `sent(path)` says whether a repository-relative path goes out in it.
 */
async function sendStep(
  upper: string,
  target: string,
  skip: (path: string) => boolean,
  exists: (rel: string) => Promise<boolean>,
): Promise<{send: IngestSend; sent: (path: string) => boolean}> {
  let base = target
  for (let parent = posix.dirname(base); parent !== '.' && !(await exists(parent)); parent = posix.dirname(parent)) base = parent
  const sent = (path: string) => {
    if (path === base) return true
    if (!path.startsWith(`${base}/`)) return false
    if (target.startsWith(`${path}/`)) return true // a new directory on the way to the target
    return (path === target || path.startsWith(`${target}/`)) && !skip(path)
  }
  const send: IngestSend = {dir: join(upper, base), base, exclude: (rel) => !sent(`${base}/${rel}`)}
  return {send, sent}
}

/** The extended attributes (less overlayfs' own) of what a call sends, by repository-relative path. */
function carriedXattrs(table: XattrTable, upper: string, sent: (path: string) => boolean): XattrTable {
  const carried: XattrTable = new Map()
  for (const [abs, attrs] of table) {
    const rel = relative(upper, abs)
    if (rel === '' || rel.startsWith('..') || !sent(rel)) continue
    const own = new Map([...attrs].filter(([name]) => !name.startsWith(OVERLAY_XATTR)))
    if (own.size > 0) carried.set(rel, own)
  }
  return carried
}

function rank(top: string): number {
  if (top === FLAT_DIR) return 0
  if (top === METADATA_DIR) return 1
  // Before the variant links of the registry directories that lead into it.
  if (top === MULTIARCH_DIR) return 2
  if (top === PODMAN_STORE_DIR) return 4
  return 3
}

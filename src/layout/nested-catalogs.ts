/**
 * Nested catalogs inside a flat root. DUCC gives each flat root one catalog (its
 * `.cvmfscatalog` at the top), so a container start loads the whole image's catalog
 * before reading its first file: 2.9 MB compressed for a 34 000-entry Python image.
 * Publishing into CVMFS, cvmfs-oci also marks every subdirectory whose remaining
 * subtree holds at least {@link MIN_CATALOG_WEIGHT} entries, bottom-up, as CernVM-FS's
 * own autocatalogs weigh directories: a start then loads only the catalogs on its path.
 * Paths do not change; only how CVMFS splits the image's metadata.
 */
import {readdirSync} from 'node:fs'
import {join} from 'node:path'

import {VerificationError} from '../errors.js'
import {lstat, unlink, utimes, writeFile} from '../fs-promises.js'
import {CATALOG_MARKER} from './paths.js'

/** CernVM-FS's minimum recommended catalog size (the default min weight of its autocatalogs). */
export const MIN_CATALOG_WEIGHT = 1000

/** One directory of a flat root, as the cut sees it: how many entries, which subdirectories. */
export interface DirCounts {
  /** Its entries that are not directories (files, symlinks, devices, FIFOs, its marker). */
  others: number
  /** Its subdirectories, by name. */
  dirs: Map<string, DirCounts>
  /** Holds a `.cvmfscatalog` already (the image's own file): a nested catalog whatever the cut says. */
  marked?: boolean
}

/** One directory the cut makes a nested catalog. */
export interface CatalogCut {
  /** Relative to the flat root, `/`-separated. */
  path: string
  /** The entries its catalog holds (itself included; a nested catalog below counts as one). */
  weight: number
}

/**
 * Where to put `.cvmfscatalog` markers below `root` (never on `root` itself: it is a
 * catalog already). Post-order: weight(dir) = 1 + its non-directory entries + the weight
 * of each subdirectory, where a subdirectory that became a catalog (cut here, or marked
 * by the image) counts as 1; a subdirectory is cut when its weight is `minWeight` or
 * more. Returns the cuts sorted by path, and what remains in the root's catalog.
 * Iterative, so that no depth of nesting exhausts the stack.
 */
export function cutCatalogs(root: DirCounts, minWeight = MIN_CATALOG_WEIGHT): {cuts: CatalogCut[]; rootWeight: number} {
  interface Frame {
    node: DirCounts
    path: string
    pending: [string, DirCounts][]
    weight: number
  }
  const cuts: CatalogCut[] = []
  const stack: Frame[] = [{node: root, path: '', pending: [...root.dirs], weight: 1 + root.others}]
  for (;;) {
    const top = stack[stack.length - 1]!
    const next = top.pending.pop()
    if (next) {
      const [name, child] = next
      stack.push({node: child, path: top.path === '' ? name : `${top.path}/${name}`, pending: [...child.dirs], weight: 1 + child.others})
      continue
    }
    stack.pop()
    const parent = stack[stack.length - 1]
    if (!parent) return {cuts: cuts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), rootWeight: top.weight}
    const cut = top.weight >= minWeight && !top.node.marked
    if (cut) cuts.push({path: top.path, weight: top.weight})
    parent.weight += cut || top.node.marked ? 1 : top.weight
  }
}

/**
 * Count the entries of the tree below `root` (one readdir per directory, the types from
 * the directory entries: no stat). A `.cvmfscatalog` the image holds is kept as it is:
 * a regular file makes its directory a nested catalog (as CernVM-FS does); anything
 * else there (a symlink, a directory) makes CernVM-FS's publish fail ("is not a regular
 * file"), so the image is refused here, naming the path, before the change is published.
 */
export function countTree(root: string): DirCounts {
  const walk = (dir: string, rel: string): DirCounts => {
    const node: DirCounts = {others: 0, dirs: new Map()}
    for (const entry of readdirSync(dir, {withFileTypes: true})) {
      if (entry.name === CATALOG_MARKER) {
        if (!entry.isFile()) throw refuseMarker(rel === '' ? CATALOG_MARKER : `${rel}/${CATALOG_MARKER}`, entryKind(entry))
        node.marked = true
      }
      if (entry.isDirectory()) node.dirs.set(entry.name, walk(join(dir, entry.name), rel === '' ? entry.name : `${rel}/${entry.name}`))
      else node.others++
    }
    return node
  }
  return walk(root, '')
}

/** What kind of entry a directory entry (or lstat) says it is, for messages. */
function entryKind(type: {isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean}): string {
  return type.isFile() ? 'regular file' : type.isDirectory() ? 'directory' : type.isSymbolicLink() ? 'symlink' : 'special file'
}

function refuseMarker(rel: string, kind: string): VerificationError {
  return new VerificationError(
    `the image has a ${kind} named ${rel}, where CernVM-FS reads a nested catalog marker (it must be a regular file: CernVM-FS's publish refuses anything else)`,
    {code: 'E_CATALOG_MARKER', hint: 'Remove or rename that entry in the image: it cannot be published in DUCC\'s layout.'},
  )
}

/**
 * The `.cvmfscatalog` at the top of a flat root, as DUCC puts it there: written empty.
 * Never through what the image put at that path: a symlink there would have the write
 * land wherever it points (on the publisher's own files), so anything but a regular
 * file is refused.
 */
export async function writeRootMarker(root: string): Promise<void> {
  const path = join(root, CATALOG_MARKER)
  const stat = await lstat(path).catch(() => undefined)
  if (stat && !stat.isFile()) throw refuseMarker(CATALOG_MARKER, entryKind(stat))
  // The image's own regular file: replaced by an empty one (its content means nothing to
  // CVMFS). Never truncated in place: it may be a hardlink to another of the image's files,
  // or, in a root started from a clone, to a file of another published root.
  if (stat) await unlink(path)
  await writeFile(path, '', {flag: 'wx', mode: 0o644})
}

/**
 * Mark the big subtrees of a finished flat root (see {@link cutCatalogs}) with empty
 * `.cvmfscatalog` files, keeping each directory's mtime as the merge set it. Returns the
 * markers written (relative paths, for the flat record's `added`: they are not the
 * image's, and a root started from this one must not inherit them) and the cuts.
 */
export async function addNestedCatalogs(root: string, minWeight = MIN_CATALOG_WEIGHT): Promise<{added: string[]; cuts: CatalogCut[]; rootWeight: number}> {
  const {cuts, rootWeight} = cutCatalogs(countTree(root), minWeight)
  const added: string[] = []
  for (const {path} of cuts) {
    const dir = join(root, path)
    const {atime, mtime} = await lstat(dir)
    // 'wx': never through anything already there (the walk saw nothing, but never follow a link).
    await writeFile(join(dir, CATALOG_MARKER), '', {flag: 'wx', mode: 0o644})
    await utimes(dir, atime, mtime)
    added.push(`${path}/${CATALOG_MARKER}`)
  }
  return {added, cuts, rootWeight}
}

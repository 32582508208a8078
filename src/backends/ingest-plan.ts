/**
 * From an overlay upper directory (see overlay-mount.ts) to `cvmfs_server ingest` calls.
 * `ingest` writes a tar below one base directory and cannot take the repository root, so
 * a change goes out as:
 *
 *  1. one call deleting every whiteout and opaque directory (`-d PATH`, repeated);
 *  2. one call per new flat root, `--catalog -b .flat/<hh>/<hex>` (its nested catalog);
 *  3. one call per top-level directory with anything else in it, in the order readers
 *     need: `.flat`, `.metadata`, `.multiarch` (the platforms of multi-platform names),
 *     the registry directories (public links), `podmanStore`.
 *
 * Each call is its own publish, so a reader sees a flat root before any link to it.
 */
import {lstat, readdir} from 'node:fs/promises'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {CATALOG_MARKER, FLAT_DIR, METADATA_DIR, MULTIARCH_DIR} from '../layout/paths.js'
import type {Logger} from '../log.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {readXattrTree} from '../unpack/xattrs.js'

export interface IngestSend {
  /** Absolute directory in the upper directory whose contents are sent. */
  dir: string
  /** Repository-relative base directory (`-b`). */
  base: string
  /** `--catalog`: make `base` a nested catalog. */
  catalog: boolean
  /** Paths relative to `dir` left out of the tar. */
  exclude: (rel: string) => boolean
}

export interface IngestStep {
  delete?: string[]
  send?: IngestSend
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
  if (deletions.length > 0) steps.push({delete: deletions})
  for (const flat of scan.flatRoots) {
    steps.push({send: {dir: join(upper, flat), base: flat, catalog: true, exclude: (rel) => rel === CATALOG_MARKER}})
  }
  const skip = new Set([...scan.deletions.filter((d) => !scan.opaque.has(d)), ...scan.flatRoots])
  for (const top of [...scan.touched].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))) {
    const exclude = (rel: string) => {
      const path = `${top}/${rel}`
      return [...skip].some((s) => path === s || path.startsWith(`${s}/`))
    }
    steps.push({send: {dir: join(upper, top), base: top, catalog: false, exclude}})
  }
  return steps
}

function rank(top: string): number {
  if (top === FLAT_DIR) return 0
  if (top === METADATA_DIR) return 1
  // Before the variant links of the registry directories that lead into it.
  if (top === MULTIARCH_DIR) return 2
  if (top === PODMAN_STORE_DIR) return 4
  return 3
}

/**
 * Find a published flat root to start a merge from: the one whose layers are the
 * longest prefix of the new image's (by ChainID, through `.metadata/.chains`). An
 * app image on a published base then costs its own layers only; an image with the
 * same layers and another config costs no layer at all.
 */
import {join} from 'node:path'

import {lstat, readdir, readFile, stat} from '../fs-promises.js'
import {CATALOG_MARKER, CHAINS_DIR, chainIndexRel, flatRootRel, METADATA_DIR} from '../layout/paths.js'
import {readFlatRecord} from '../layout/write.js'

export interface BaseRoot {
  configDigest: string
  path: string
  /** How many of the new image's layers it already holds. */
  layers: number
  /** What publish added to it, to leave out of the clone. */
  skip: string[]
  /** Bytes of file content the clone holds: its record's size, less what publish added. */
  bytes?: number
}

/** `chains[i]` is the ChainID of the new image's layers 0…i. */
export async function findBaseRoot(root: string, chains: readonly string[]): Promise<BaseRoot | undefined> {
  for (let k = chains.length; k >= 1; k--) {
    const chainId = chains[k - 1]!
    const configDigest = (await readFile(join(root, chainIndexRel(chainId)), 'utf8').catch(() => '')).trim()
    if (!/^sha256:[0-9a-f]{64}$/.test(configDigest)) continue
    // Only a root whose record says what was added to it can be cloned faithfully.
    const record = await readFlatRecord(root, configDigest)
    if (!record?.added || record.chainId !== chainId) continue
    const path = join(root, flatRootRel(configDigest))
    if (!(await stat(path).then((s) => s.isDirectory(), () => false))) continue
    const skip = [...record.added, CATALOG_MARKER]
    return {configDigest, path, layers: k, skip, bytes: record.size - (await filesBytes(path, skip))}
  }
  return undefined
}

/** Bytes of the regular files among `paths` (relative to `root`). */
export async function filesBytes(root: string, paths: readonly string[]): Promise<number> {
  let bytes = 0
  for (const rel of paths) {
    const stat = await lstat(join(root, rel)).catch(() => undefined)
    if (stat?.isFile()) bytes += stat.size
  }
  return bytes
}

/** Whether any published root could be a base: the ChainID index names at least one. */
export async function anyBaseRoot(root: string): Promise<boolean> {
  const dirs = await readdir(join(root, METADATA_DIR, CHAINS_DIR)).catch(() => [] as string[])
  for (const dir of dirs) if ((await readdir(join(root, METADATA_DIR, CHAINS_DIR, dir)).catch(() => [])).length > 0) return true
  return false
}

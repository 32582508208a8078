/**
 * Writing the layout: atomic file and symlink replacement, the public link, DUCC's
 * `.metadata/<name>/manifest.json`, our image record, the original manifest and
 * config bytes, and the `.cvmfscatalog` markers. Readers (resolve, the hook, other
 * clients of the repository) only ever see a complete old or a complete new state:
 * every write goes to a temporary name in the same directory, then rename(2).
 */
import {dirname, join} from 'node:path'

import {UserError} from '../errors.js'
import {lstat, mkdir, readFile, readlink, rename, rm, symlink, writeFile} from '../fs-promises.js'
import {
  blobRel,
  CATALOG_MARKER,
  chainIndexRel,
  DUCC_MANIFEST,
  FLAT_DIR,
  flatRecordRel,
  IMAGE_RECORD,
  metadataDirRel,
  multiarchLinkRel,
  multiarchLinkTarget,
  multiarchMetadataDirRel,
  relativeLinkTarget,
} from './paths.js'

/** Temporary names start with this, so a reader or a clean-up can tell them apart. */
export const TEMP_PREFIX = '.cvmfs-oci-tmp.'

function tempName(path: string): string {
  return join(dirname(path), `${TEMP_PREFIX}${process.pid}.${Math.random().toString(36).slice(2, 10)}`)
}

/** Replace a file atomically. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), {recursive: true})
  const temp = tempName(path)
  try {
    await writeFile(temp, data, {mode, flag: 'wx'})
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
}

/** Create or replace a symlink atomically. Refuses to replace a real directory. */
export async function replaceSymlink(path: string, target: string): Promise<void> {
  await mkdir(dirname(path), {recursive: true})
  const existing = await lstat(path).catch(() => null)
  if (existing && !existing.isSymbolicLink() && existing.isDirectory()) {
    throw new UserError(`cannot publish the link ${path}: a directory is in the way`, {
      code: 'E_LINK_IN_THE_WAY',
      hint: 'Something other than cvmfs-oci (or DUCC) wrote there; move it away and publish again.',
    })
  }
  const temp = tempName(path)
  try {
    await symlink(target, temp)
    await rename(temp, path)
  } catch (error) {
    await rm(temp, {force: true})
    throw error
  }
}

/** Write `content` at `rel` unless a file is already there (content-addressed blobs never change). */
async function writeOnce(root: string, rel: string, content: Buffer): Promise<void> {
  const path = join(root, rel)
  if (await lstat(path).then(() => true, () => false)) return
  await writeFileAtomic(path, content)
}

/** Our record of one published name, next to DUCC's manifest.json. */
export interface ImageRecord {
  /** podman form, e.g. docker.io/library/ubuntu:22.04 */
  reference: string
  /** public link name, e.g. registry.hub.docker.com/library/ubuntu:22.04 */
  name: string
  manifestDigest: string
  configDigest: string
  mediaType?: string
  /** os/arch[/variant] */
  platform: string
  /** bytes of file content in the flat root */
  size: number
  /** the image's own creation date (config.created) */
  created?: string
  /** when cvmfs-oci published it */
  published: string
  /** the source given to publish */
  source: string
  /** the index the manifest was chosen from, for multi-platform images */
  indexDigest?: string
  /**
   * For one platform of a multi-platform name: its `.multiarch` directory (`amd64`,
   * `arm64:v8`); the record then sits in `.metadata/.multiarch/<arch>/<name>/`.
   */
  arch?: string
}

export interface ImageMetadata {
  record: ImageRecord
  manifestBytes: Buffer
  configBytes: Buffer
  indexBytes?: Buffer
  /** DUCC's capitalised manifest.json. */
  duccManifest: string
}

/**
 * Write everything but the flat root for one image, the link last: a reader that finds
 * the link finds the metadata too. The link is the public one, `<name>`, or for one
 * platform of a multi-platform name (`record.arch`) `.multiarch/<arch>/<name>`, with its
 * metadata in `.metadata/.multiarch/<arch>/<name>/` (DUCC's places).
 */
export async function writeImageMetadata(root: string, meta: ImageMetadata): Promise<void> {
  await writeImageFiles(root, meta)
  await writeImageLink(root, meta.record)
}

/** The metadata of one image (blobs, DUCC's manifest.json, our record): everything below `.metadata`. */
export async function writeImageFiles(root: string, meta: ImageMetadata): Promise<void> {
  const {record} = meta
  await writeOnce(root, blobRel(record.configDigest), meta.configBytes)
  await writeOnce(root, blobRel(record.manifestDigest), meta.manifestBytes)
  if (meta.indexBytes && record.indexDigest) await writeOnce(root, blobRel(record.indexDigest), meta.indexBytes)
  const {arch, name} = record
  const dir = join(root, arch === undefined ? metadataDirRel(name) : multiarchMetadataDirRel(arch, name))
  await writeFileAtomic(join(dir, DUCC_MANIFEST), meta.duccManifest)
  await writeFileAtomic(join(dir, IMAGE_RECORD), `${JSON.stringify(record, null, 2)}\n`)
}

/** The link of one image (see {@link writeImageMetadata}), unless it already leads there. True when written. */
export async function writeImageLink(root: string, record: Pick<ImageRecord, 'name' | 'configDigest' | 'arch'>): Promise<boolean> {
  const {arch, name, configDigest} = record
  const [path, target] =
    arch === undefined ? [join(root, name), relativeLinkTarget(name, configDigest)] : [join(root, multiarchLinkRel(arch, name)), multiarchLinkTarget(arch, name, configDigest)]
  if ((await readlink(path).catch(() => undefined)) === target) return false
  await replaceSymlink(path, target)
  return true
}

/** What we know of a flat root, kept at `.metadata/.flat/<hh>/<hex>.json`. */
export interface FlatRecord {
  configDigest: string
  /** ChainID of the layers merged into it (without foreign layers). */
  chainId?: string
  /** Paths publish added (mount points, .cvmfscatalog): not part of the image's layers. */
  added?: string[]
  /** bytes of file content */
  size: number
  files: number
  unpacked: string
}

export async function writeFlatRecord(root: string, record: FlatRecord): Promise<void> {
  await writeFileAtomic(join(root, flatRecordRel(record.configDigest)), `${JSON.stringify(record, null, 2)}\n`)
  // The index that lets an image built on this one start from it (publish/base-root.ts).
  if (record.chainId) await writeFileAtomic(join(root, chainIndexRel(record.chainId)), `${record.configDigest}\n`)
}

export async function readFlatRecord(root: string, configDigest: string): Promise<FlatRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(root, flatRecordRel(configDigest)), 'utf8')) as FlatRecord
  } catch {
    return undefined
  }
}

/** The `.cvmfscatalog` of `.flat/` (the flat root's own is written while staging). */
export async function ensureCatalogMarkers(root: string): Promise<void> {
  const marker = join(root, FLAT_DIR, CATALOG_MARKER)
  if (!(await lstat(marker).then(() => true, () => false))) await writeFileAtomic(marker, '')
}

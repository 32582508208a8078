/**
 * What a repository holds: every image named under `.metadata/`, with what DUCC's
 * manifest.json and our own record say about it. Also the two readers of those files,
 * which `resolve` uses to match digests.
 *
 * Listing walks `.metadata` (it is not on a hot path); resolving never does.
 */
import {join} from 'node:path'

import {lstat, readdir, readFile, realpath} from '../fs-calls.js'
import {NotFoundError} from '../errors.js'
import {CHAINS_DIR, DUCC_MANIFEST, FLAT_DIR, IMAGE_RECORD, METADATA_DIR, MULTIARCH_DIR, multiarchLinkRel, multiarchMetadataDirRel} from './paths.js'
import {hostArch} from './arch-names.js'
import {realArchDirs} from './exists.js'
import type {ImageRecord as StoredRecord} from './write.js'
import {formatReference, parseLayoutName} from '../reference/reference.js'
import {isMissing, resolvePublicLink} from './link.js'

export interface ListedImage {
  /** Link name relative to the repository root, e.g. `registry.hub.docker.com/library/ubuntu:22.04`. */
  name: string
  /** podman form, e.g. `docker.io/library/ubuntu:22.04`. */
  reference: string
  configDigest?: string
  manifestDigest?: string
  /** Bytes: from our record (unpacked), else the sum of layer sizes in manifest.json (compressed). */
  size?: number
  sizeKind?: 'unpacked' | 'compressed'
  /** ISO date: the record's `published`, else the link's mtime. */
  date?: string
  platform?: string
  /** Real path of the flat root, if the link resolves. */
  path?: string
  /**
   * A name published for several platforms (DUCC's `.metadata/.multiarch/<arch>/<name>`):
   * each of them. The fields above then describe the one the public link leads this node to.
   */
  platforms?: ListedPlatform[]
}

/** One platform of a multi-platform name. */
export interface ListedPlatform {
  /** Its `.multiarch` directory, e.g. `arm64:v8`. */
  arch: string
  platform?: string
  configDigest?: string
  manifestDigest?: string
  size?: number
  sizeKind?: 'unpacked' | 'compressed'
  date?: string
  path?: string
}

/** Our per-image record, `.metadata/<name>/cvmfs-oci.json` (fields we read; all optional). */
/** Our record of a published name, as read back: every field may be missing in an old or foreign file. */
export type ImageRecord = Partial<Pick<StoredRecord, 'reference' | 'name' | 'manifestDigest' | 'configDigest' | 'platform' | 'size' | 'created' | 'published' | 'source' | 'indexDigest' | 'arch'>>

/** DUCC's manifest.json, whichever key spelling it was written with. */
export interface DuccManifest {
  schemaVersion?: number
  mediaType?: string
  configDigest?: string
  layers: {mediaType?: string; size?: number; digest?: string}[]
}

/** Directories of `.metadata` that are not image names. */
const SKIP = new Set(['.blobs', CHAINS_DIR, FLAT_DIR, MULTIARCH_DIR])
/** Parallel reads while listing (and gc's scan): enough to hide CVMFS latency, few enough for the fd limit. */
export const READ_CONCURRENCY = 16

/**
 * List the images of one repository root, sorted by name.
 *
 * @throws NotFoundError `E_ROOT_NOT_FOUND` when the root does not exist.
 */
export async function listImages(root: string, options: {env?: NodeJS.ProcessEnv} = {}): Promise<ListedImage[]> {
  let realRoot: string
  try {
    realRoot = await realpath(root)
  } catch (error) {
    if (!isMissing(error)) throw error
    throw new NotFoundError(`repository root ${root} does not exist`, {code: 'E_ROOT_NOT_FOUND', cause: error})
  }
  const names: string[] = []
  await collectNames(join(realRoot, METADATA_DIR), '', names)
  // Names published for several platforms have their metadata per platform only.
  const arches = new Map<string, string[]>()
  for (const arch of await realArchDirs(join(realRoot, METADATA_DIR, MULTIARCH_DIR))) {
    const found: string[] = []
    await collectNames(join(realRoot, METADATA_DIR, MULTIARCH_DIR, arch), '', found)
    for (const name of found) arches.set(name, [...(arches.get(name) ?? []), arch])
  }
  const all = [...new Set([...names, ...arches.keys()])].sort()
  // As resolve reads a variant link: CVMFS_ARCH, else this node's architecture.
  const env = options.env ?? process.env
  const expand = {...env, CVMFS_ARCH: env.CVMFS_ARCH ?? hostArch()}
  return mapLimit(all, READ_CONCURRENCY, (name) => describe(realRoot, name, expand, arches.get(name) ?? []))
}

/** Read our record in an image's metadata directory; `undefined` if absent or unreadable as JSON. */
export async function readImageRecord(metadataDir: string): Promise<ImageRecord | undefined> {
  const json = await readJson(join(metadataDir, IMAGE_RECORD))
  if (!isObject(json)) return undefined
  const record: ImageRecord = {}
  for (const key of ['reference', 'name', 'manifestDigest', 'configDigest', 'platform', 'created', 'published', 'source', 'indexDigest', 'arch'] as const) {
    if (typeof json[key] === 'string') record[key] = json[key]
  }
  if (typeof json.size === 'number' && Number.isFinite(json.size)) record.size = json.size
  return record
}

/** Read DUCC's manifest.json in an image's metadata directory; `undefined` if absent or malformed. */
export async function readDuccManifest(metadataDir: string): Promise<DuccManifest | undefined> {
  return normaliseDuccManifest(await readJson(join(metadataDir, DUCC_MANIFEST)))
}

/**
 * Accept both Go's capitalised keys (`Config.Digest`, `Layers[].Size`), which DUCC
 * writes, and the lower-case OCI/Docker keys.
 */
export function normaliseDuccManifest(json: unknown): DuccManifest | undefined {
  if (!isObject(json)) return undefined
  const config = pick(json, 'config')
  const layers = pick(json, 'layers')
  const manifest: DuccManifest = {layers: []}
  const schemaVersion = pick(json, 'schemaVersion')
  const mediaType = pick(json, 'mediaType')
  const configDigest = isObject(config) ? pick(config, 'digest') : undefined
  if (typeof schemaVersion === 'number') manifest.schemaVersion = schemaVersion
  if (typeof mediaType === 'string') manifest.mediaType = mediaType
  if (typeof configDigest === 'string') manifest.configDigest = configDigest
  if (Array.isArray(layers)) {
    for (const layer of layers) {
      if (!isObject(layer)) continue
      const entry: DuccManifest['layers'][number] = {}
      const [lMediaType, size, digest] = [pick(layer, 'mediaType'), pick(layer, 'size'), pick(layer, 'digest')]
      if (typeof lMediaType === 'string') entry.mediaType = lMediaType
      if (typeof size === 'number') entry.size = size
      if (typeof digest === 'string') entry.digest = digest
      manifest.layers.push(entry)
    }
  }
  return manifest
}

/**
 * Every directory below `dir` (a repository's `.metadata`) holding a manifest.json is an
 * image name; `.blobs`, `.flat` and `.multiarch` at the top are not searched.
 */
export async function collectNames(dir: string, rel: string, out: string[]): Promise<void> {
  let entries
  try {
    entries = await readdir(dir, {withFileTypes: true})
  } catch (error) {
    if (isMissing(error)) return
    throw error
  }
  if (rel !== '' && entries.some((e) => e.name === DUCC_MANIFEST && !e.isDirectory())) {
    out.push(rel)
    return
  }
  const subdirs = entries.filter((e) => e.isDirectory() && !(rel === '' && SKIP.has(e.name)))
  await Promise.all(subdirs.map((e) => collectNames(join(dir, e.name), rel === '' ? e.name : `${rel}/${e.name}`, out)))
}

async function describe(root: string, name: string, env: NodeJS.ProcessEnv, arches: string[]): Promise<ListedImage> {
  const [entry, linkInfo] = await Promise.all([describeEntry(join(root, METADATA_DIR, name), root, name, env), lstat(join(root, name)).catch(() => undefined)])
  // Where the public link leads (describeEntry resolved the name's link).
  const path = entry.path
  const platforms = await Promise.all(arches.map(async (arch) => ({arch, ...(await describeEntry(join(root, multiarchMetadataDirRel(arch, name)), root, multiarchLinkRel(arch, name), env))})))
  // The platform this node's public link leads to describes the name; else its own metadata; else the first.
  const main: Entry = platforms.find((p) => p.path !== undefined && p.path === path) ?? (entry.configDigest !== undefined ? entry : (platforms[0] ?? entry))
  const {arch: _arch, record: _record, path: _path, ...fields} = main as Entry & {arch?: string}
  const image: ListedImage = {name, reference: referenceOf(name, entry.record ?? platforms[0]?.record), ...fields}
  if (path) image.path = path
  const date = image.date ?? linkInfo?.mtime.toISOString()
  if (date) image.date = date
  if (platforms.length > 0) image.platforms = platforms.map(({record: _r, ...p}) => p)
  return image
}

/** What one metadata directory says, and where its link leads. */
type Entry = Omit<ListedPlatform, 'arch'> & {record?: ImageRecord}

/** What one metadata directory (and the link it describes) says about an image. */
async function describeEntry(metadataDir: string, root: string, link: string, env: NodeJS.ProcessEnv): Promise<Entry> {
  const [record, manifest, path] = await Promise.all([
    readImageRecord(metadataDir),
    readDuccManifest(metadataDir),
    resolvePublicLink(root, link, {env}).catch(() => undefined),
  ])
  const out: Entry = {}
  if (record) out.record = record
  const configDigest = record?.configDigest ?? manifest?.configDigest
  if (configDigest) out.configDigest = configDigest
  if (record?.manifestDigest) out.manifestDigest = record.manifestDigest
  if (record?.size !== undefined) {
    out.size = record.size
    out.sizeKind = 'unpacked'
  } else if (manifest && manifest.layers.length > 0 && manifest.layers.every((l) => l.size !== undefined)) {
    out.size = manifest.layers.reduce((sum, l) => sum + l.size!, 0)
    out.sizeKind = 'compressed'
  }
  if (record?.published) out.date = record.published
  if (record?.platform) out.platform = record.platform
  if (path) out.path = path
  return out
}

/** podman form of a link name; names DUCC accepted but we cannot parse are shown as they are. */
function referenceOf(name: string, record: ImageRecord | undefined): string {
  try {
    return formatReference(parseLayoutName(name))
  } catch {
    return record?.reference ?? name
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if (isMissing(error)) return undefined
    throw error
  }
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** A key in either spelling: `config` or Go's `Config`. */
function pick(object: Record<string, unknown>, key: string): unknown {
  return object[key] ?? object[key[0]!.toUpperCase() + key.slice(1)]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `fn` of each item, at most `limit` at once; the results in the items' order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(limit, items.length)}, worker))
  return results
}

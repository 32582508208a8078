/**
 * What in a repository nothing references any more (read-only; the caller holds the
 * repository lock so nothing is linked meanwhile):
 *
 * - metadata `.metadata/<name>/` (and DUCC's `.metadata/.multiarch/<arch>/<name>/`) whose
 *   public link is gone;
 * - flat roots `.flat/<hh>/<hex>` no symlink points to: the public links and DUCC's
 *   `.multiarch/` links count, each read lexically (relative, or the pre-2019 absolute
 *   `/cvmfs/<repo>/…` form); variant links point into `.multiarch/`, which is read too. The
 *   podman store's links do not count: the store names images only through public names,
 *   and drops a layer once its flat root is gone;
 * - our records `.metadata/.flat/<hh>/<hex>.json` of flat roots that are gone or going;
 * - our blobs `.metadata/.blobs/sha256/<hex>` no remaining record names (a config blob of a
 *   remaining flat root always stays);
 * - DUCC's layers `.layers/<hh>/<hex>` no remaining manifest.json lists.
 */
import {join, posix} from 'node:path'

import {lstat, readdir, readFile, readlink} from '../fs-calls.js'
import {pathExists} from '../layout/exists.js'
import {BLOBS_DIR, CATALOG_MARKER, CHAINS_DIR, FLAT_DIR, flatRecordRel, IMAGE_RECORD, LAYERS_DIR, METADATA_DIR, MULTIARCH_DIR} from '../layout/paths.js'
import {collectNames, mapLimit, READ_CONCURRENCY, readDuccManifest} from '../layout/list.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'

export type GarbageKind = 'metadata' | 'flat' | 'flat-record' | 'chain' | 'blob' | 'layer'

export interface Garbage {
  kind: GarbageKind
  /** Relative to the repository root. */
  path: string
  /** For `metadata`: the public name it described. */
  name?: string
  /** Bytes it holds (file content). */
  bytes: number
}

const HEX = /^[0-9a-f]{64}$/
const FLAT_PATH = /^\.flat\/[0-9a-f]{2}\/([0-9a-f]{64})(?:\/|$)/

/**
 * Everything unreferenced, metadata first, then flat roots, records, blobs, layers. The
 * areas are listed at once (each list is a chain of directory reads, which on a CVMFS
 * mount are round trips of their own); what is garbage is decided after, in that order.
 */
export async function findGarbage(root: string): Promise<Garbage[]> {
  const [links, metadata, flatRoots, flatRecords, chains, blobs, layers] = await Promise.all([
    symlinks(root),
    scanMetadata(root),
    hashedEntries(root, FLAT_DIR),
    hashedEntries(root, join(METADATA_DIR, FLAT_DIR), '.json'),
    hashedEntries(root, join(METADATA_DIR, CHAINS_DIR)),
    names(join(root, BLOBS_DIR)),
    hashedEntries(root, LAYERS_DIR),
  ])
  const linked = new Set<string>()
  for (const [link, target] of links) {
    const hex = FLAT_PATH.exec(lexicalTarget(link, target) ?? '')?.[1]
    if (hex) linked.add(hex)
  }
  // Metadata of names without a link.
  const garbage = metadata.garbage

  // Flat roots, and our records of them.
  const remaining = new Set<string>()
  for (const hex of flatRoots) {
    if (linked.has(hex)) {
      remaining.add(hex)
      continue
    }
    const record = await readJson(join(root, flatRecordRel(`sha256:${hex}`)))
    const size = typeof record?.size === 'number' ? record.size : await treeBytes(join(root, FLAT_DIR, hex.slice(0, 2), hex))
    garbage.push({kind: 'flat', path: join(FLAT_DIR, hex.slice(0, 2), hex), bytes: size})
  }
  for (const file of flatRecords) {
    if (!remaining.has(file)) garbage.push({kind: 'flat-record', path: flatRecordRel(`sha256:${file}`), bytes: await fileBytes(join(root, flatRecordRel(`sha256:${file}`)))})
  }

  // The ChainID index: entries whose flat root is gone or going.
  for (const hex of chains) {
    const path = join(METADATA_DIR, CHAINS_DIR, hex.slice(0, 2), hex)
    const target = /sha256:([0-9a-f]{64})/.exec((await readFile(join(root, path), 'utf8').catch(() => '')) ?? '')?.[1]
    if (!target || !remaining.has(target)) garbage.push({kind: 'chain', path, bytes: await fileBytes(join(root, path))})
  }

  // Original manifest and config bytes.
  for (const hex of blobs) {
    if (!HEX.test(hex) || metadata.liveDigests.has(`sha256:${hex}`) || remaining.has(hex)) continue
    garbage.push({kind: 'blob', path: join(BLOBS_DIR, hex), bytes: await fileBytes(join(root, BLOBS_DIR, hex))})
  }

  // DUCC's per-layer trees.
  for (const hex of layers) {
    if (metadata.liveLayers.has(`sha256:${hex}`)) continue
    const path = join(LAYERS_DIR, hex.slice(0, 2), hex)
    garbage.push({kind: 'layer', path, bytes: await treeBytes(join(root, path))})
  }
  return garbage
}

/** The metadata of names without a link (garbage), and what the remaining names reference. */
async function scanMetadata(root: string): Promise<{garbage: Garbage[]; liveDigests: Set<string>; liveLayers: Set<string>}> {
  const garbage: Garbage[] = []
  const liveDigests = new Set<string>()
  const liveLayers = new Set<string>()
  const metadataSets: {dir: string; link: (name: string) => string}[] = [{dir: METADATA_DIR, link: (name) => name}]
  for (const arch of await names(join(root, METADATA_DIR, MULTIARCH_DIR))) {
    metadataSets.push({dir: join(METADATA_DIR, MULTIARCH_DIR, arch), link: (name) => join(MULTIARCH_DIR, arch, name)})
  }
  for (const {dir, link} of metadataSets) {
    const found: string[] = []
    await collectNames(join(root, dir), '', found)
    // Names READ_CONCURRENCY at a time (on a CVMFS mount each read is a round trip), the
    // record and the manifest of a linked name at once; the results in name order.
    const scanned = await mapLimit(found.sort(), READ_CONCURRENCY, async (name): Promise<{garbage?: Garbage; digests?: string[]; layers?: {digest?: string}[]}> => {
      const metadataDir = join(root, dir, name)
      if (!(await pathExists(join(root, link(name))))) {
        return {garbage: {kind: 'metadata', path: join(dir, name), name: dir === METADATA_DIR ? name : undefined, bytes: await treeBytes(metadataDir)}}
      }
      const [digests, manifest] = await Promise.all([recordDigests(metadataDir), readDuccManifest(metadataDir)])
      return {digests, layers: manifest?.layers}
    })
    for (const {garbage: unlinked, digests = [], layers = []} of scanned) {
      if (unlinked) garbage.push(unlinked)
      for (const digest of digests) liveDigests.add(digest)
      for (const layer of layers) if (layer.digest) liveLayers.add(layer.digest)
    }
  }
  return {garbage, liveDigests, liveLayers}
}

/**
 * Every symlink that can name an image: below the public directories and `.multiarch/`,
 * not in the other areas (`.flat`, `.metadata`, …), not in the podman store, and not inside
 * a tree that is a nested catalog (a flat root copied under a name).
 */
async function symlinks(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(root, rel), {withFileTypes: true}).catch(() => [])
    if (rel !== '' && entries.some((e) => e.name === CATALOG_MARKER)) return
    for (const entry of entries) {
      if (rel === '' && (entry.name === PODMAN_STORE_DIR || (entry.name.startsWith('.') && entry.name !== MULTIARCH_DIR))) continue
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.isSymbolicLink()) out.set(child, await readlink(join(root, child)))
      else if (entry.isDirectory()) await walk(child)
    }
  }
  await walk('')
  return out
}

/**
 * Where a link leads, relative to the repository root, read without the file system:
 * `undefined` for variant links (their `.multiarch/` targets are links of their own) and
 * absolute targets outside /cvmfs.
 */
export function lexicalTarget(link: string, target: string): string | undefined {
  if (target.includes('$(')) return undefined
  if (target.startsWith('/')) {
    const rest = /^\/cvmfs\/[^/]+\/(.*)$/.exec(target)?.[1]
    return rest === undefined ? undefined : posix.normalize(rest)
  }
  return posix.normalize(posix.join(posix.dirname(link), target))
}

/** `<dir>/<hh>/<hex><suffix>` entries: the hex of each. */
async function hashedEntries(root: string, dir: string, suffix = ''): Promise<string[]> {
  const out: string[] = []
  const prefixes = (await names(join(root, dir))).filter((hh) => /^[0-9a-f]{2}$/.test(hh))
  // Up to 256 directories: READ_CONCURRENCY at a time, as scanMetadata reads names.
  for (const [hh, entries] of await mapLimit(prefixes, READ_CONCURRENCY, async (hh) => [hh, await names(join(root, dir, hh))] as const)) {
    for (const entry of entries) {
      const hex = entry.endsWith(suffix) ? entry.slice(0, entry.length - suffix.length) : ''
      if (HEX.test(hex) && hex.startsWith(hh)) out.push(hex)
    }
  }
  return out.sort()
}

/** The digests our record of a name keeps blobs for. */
async function recordDigests(metadataDir: string): Promise<string[]> {
  const record = await readJson(join(metadataDir, IMAGE_RECORD))
  return ['manifestDigest', 'configDigest', 'indexDigest'].map((key) => record?.[key]).filter((d): d is string => typeof d === 'string')
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const json = JSON.parse(await readFile(path, 'utf8')) as unknown
    return typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort()
}

async function fileBytes(path: string): Promise<number> {
  return (await lstat(path).catch(() => undefined))?.size ?? 0
}

/** Bytes of file content below a directory. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, {withFileTypes: true, recursive: true}).catch(() => [])) {
    if (entry.isFile()) total += await fileBytes(join(entry.parentPath, entry.name))
  }
  return total
}

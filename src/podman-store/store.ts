/**
 * Keeps `<root>/podmanStore` in step with the published images: a read-only
 * containers-storage "overlay" store that podman uses as an additional image store, so a
 * node runs `podman run IMAGE` from the repository without pulling.
 *
 * One synthetic layer per image, whose `diff` is a relative symlink to the flat root the
 * image already has: the store adds a handful of small files per image and no copy of any
 * tree (see docs/layout.md, "podmanStore"). Everything in it is derived from what publish
 * keeps — the record (`.metadata/<name>/cvmfs-oci.json`) and the original manifest and
 * config bytes (`.metadata/.blobs/sha256/<hex>`) — and every name in it is derived from a
 * digest, so re-running writes the same bytes and nothing can go stale.
 *
 * Readers (podman on a node, possibly while a publish runs) see the old or the new store,
 * never a torn one: files are written under a temporary name and renamed; an image's
 * files and its layer exist before images.json names them (containers/storage reads
 * images.json first and layers.json when it needs a layer); an image leaves images.json
 * before anything it used is removed, and its layer stays until its flat root is gone.
 */
import {join} from 'node:path'

import {BugError, UserError} from '../errors.js'
import {mkdir, readFile, readlink, rm, stat} from '../fs-promises.js'
import {pathExists} from '../layout/exists.js'
import {ARCH_VARIABLE, blobRel, CATALOG_MARKER, flatRootRel} from '../layout/paths.js'
import {realArchDirs} from '../layout/exists.js'
import {syncArchAliases} from '../layout/multiarch.js'
import {hostPlatform} from '../oci/platform.js'
import {replaceSymlink, writeFileAtomic, type ImageRecord} from '../layout/write.js'
import type {Logger} from '../log.js'
import {applyChange, defaultKey, storeDate, type ImageAddition, type StoreImage, type StoreLayer, type StoreState, type StoreUpdate} from './model.js'
import {
  bigDataFileName,
  diffLinkTarget,
  flatLayerId,
  IMAGES_DIR,
  IMAGES_JSON,
  imageDirRel,
  layerDirRel,
  LAYERS_DIR,
  LAYERS_JSON,
  IMAGES_LOCK,
  IMAGE_LISTS_DIR,
  imageListRel,
  imagesVariantTarget,
  LAYERS_LOCK,
  LINK_DIR,
  lockToken,
  PODMAN_STORE_DIR,
  podmanName,
  shortLinkId,
  shortLinkRel,
  shortLinkTarget,
  variantDefault,
} from './paths.js'

export interface StoreChange {
  /**
   * Names published or re-pointed in this change (their records and blobs are already
   * written). Records with `arch` are the platforms of a multi-platform name: give them
   * all in one change.
   */
  add?: ImageRecord[]
  /** Public names removed in this change (link names, or podman references). */
  remove?: string[]
  /** The architecture the public variant links default to (publish-platforms.ts). */
  defaultArch?: string
}

/**
 * Apply a change of the repository to its podman store. Call it inside the backend's
 * change, after the records, blobs and links are written (or removed): `root` must show the
 * repository as it will be, store included. An empty change only prunes layers whose flat
 * root is gone (what `gc` wants after deleting flat roots).
 *
 * @throws UserError `E_PODMAN_STORE_CORRUPT` when images.json or layers.json is not JSON
 *   (a store not written by cvmfs-oci or DUCC); `E_PODMAN_STORE_BLOB` when a manifest or
 *   config publish should have kept is missing.
 */
export async function updatePodmanStore(root: string, change: StoreChange, logger: Logger): Promise<void> {
  const [images, layers] = await Promise.all([readImageLists(root), readList<StoreLayer>(root, LAYERS_JSON)])
  const state: StoreState = {images: images.lists.get(images.defaultKey) ?? [], layers: layers.list}
  if (images.defaultArch !== undefined) Object.assign(state, {lists: images.lists, defaultArch: images.defaultArch})
  if (!change.add?.length && images.empty && state.layers.length === 0) return

  const now = new Date().toISOString()
  const blobs = new Map<string, Buffer>()
  const flatRoots = new Map<string, string>()
  const additions: ImageAddition[] = []
  for (const record of change.add ?? []) {
    additions.push(await additionFor(root, record, now, blobs))
    flatRoots.set(flatLayerId(record.configDigest), record.configDigest)
  }
  const update = applyChange(state, {
    add: additions,
    removeNames: (change.remove ?? []).map((name) => podmanName(name) ?? name),
    deadLayers: await deadLayers(root, state),
    defaultArch: change.defaultArch ?? (additions.some((a) => a.arch !== undefined) ? hostPlatform().architecture : undefined),
  })

  await ensureSkeleton(root)
  for (const layerId of update.writeLayers) await writeLayerFiles(root, layerId, flatRoots.get(layerId)!)
  await writeList(root, LAYERS_JSON, LAYERS_LOCK, JSON.stringify(update.layers), layers.text)
  const lists = update.lists ?? new Map([['', update.images]])
  for (const id of update.writeImages) {
    for (const list of lists.values()) {
      const image = list.find((i) => i.id === id)
      if (image) await writeImageFiles(root, image, blobs)
    }
  }
  const imagesChanged = await writeImageLists(root, update, images)

  for (const id of update.droppedImages) await rm(join(root, imageDirRel(id)), {recursive: true, force: true})
  for (const layerId of update.droppedLayers) await removeLayerFiles(root, layerId)

  if (imagesChanged || update.droppedLayers.length > 0) {
    const names = new Set([...lists.values()].flat().flatMap((image) => image.names ?? []))
    const ids = new Set([...lists.values()].flat().map((image) => image.id))
    logger.info(
      `${PODMAN_STORE_DIR}: ${ids.size} image(s), ${names.size} name(s)` +
        (update.lists ? ` in ${update.lists.size} per-architecture lists (${[...update.lists.keys()].join(', ')})` : '') +
        (update.droppedImages.length ? `; dropped ${update.droppedImages.length} image(s) no name points to` : '') +
        (update.droppedLayers.length ? `; pruned ${update.droppedLayers.length} layer(s) whose flat root is gone` : ''),
    )
  }
}

/** The image lists as read: one (key `''`), or per architecture below `overlay-images/.multiarch/`. */
interface ReadLists {
  lists: Map<string, StoreImage[]>
  texts: Map<string, string | undefined>
  defaultKey: string
  /** Set when images.json is the variant link to per-architecture lists. */
  defaultArch?: string
  empty: boolean
}

/**
 * Read images.json, or, where it is the variant link `.multiarch/$(CVMFS_ARCH:-X)/images.json`
 * (read literally: a publisher's own mount does not expand it), every list it may lead to.
 */
async function readImageLists(root: string): Promise<ReadLists> {
  const target = await readlink(join(root, IMAGES_JSON)).catch(() => undefined)
  const defaultArch = target === undefined ? undefined : variantDefault(target)
  if (defaultArch === undefined) {
    const one = await readList<StoreImage>(root, IMAGES_JSON)
    return {lists: new Map([['', one.list]]), texts: new Map([['', one.text]]), defaultKey: '', empty: one.list.length === 0}
  }
  const lists = new Map<string, StoreImage[]>()
  const texts = new Map<string, string | undefined>()
  for (const arch of await realArchDirs(join(root, IMAGE_LISTS_DIR))) {
    const one = await readList<StoreImage>(root, imageListRel(arch))
    lists.set(arch, one.list)
    texts.set(arch, one.text)
  }
  return {lists, texts, defaultKey: defaultKey(lists.keys(), defaultArch), defaultArch, empty: [...lists.values()].every((list) => list.length === 0)}
}

/**
 * Write the lists of an update, then what leads readers to them: for per-architecture
 * lists, their alias links, the literal `$(CVMFS_ARCH:-X)` entry (what a reader without a
 * CVMFS client finds), and last images.json as the variant link; for one list, images.json
 * itself (replacing the link), then the per-architecture lists go. The lock file's token
 * covers every list. True when a list changed.
 */
async function writeImageLists(root: string, update: StoreUpdate, before: ReadLists): Promise<boolean> {
  let changed = false
  let tokenText: string
  if (update.lists) {
    const texts: string[] = []
    for (const [arch, images] of update.lists) {
      const text = JSON.stringify(images)
      texts.push(`${arch}\n${text}`)
      if (text !== before.texts.get(arch)) {
        await writeFileAtomic(join(root, imageListRel(arch)), text)
        changed = true
      }
    }
    const dir = join(root, IMAGE_LISTS_DIR)
    await syncArchAliases(dir)
    await ensureSymlink(join(dir, `$(${ARCH_VARIABLE}:-${update.defaultArch!})`), defaultKey(update.lists.keys(), update.defaultArch!))
    await ensureSymlink(join(root, IMAGES_JSON), imagesVariantTarget(update.defaultArch!))
    for (const arch of await realArchDirs(dir)) {
      if (update.lists.has(arch)) continue
      await rm(join(dir, arch), {recursive: true, force: true})
      changed = true
    }
    await syncArchAliases(dir)
    tokenText = texts.join('\n')
  } else {
    tokenText = JSON.stringify(update.images)
    const wasLink = before.defaultArch !== undefined
    if (wasLink || tokenText !== before.texts.get('')) {
      await writeFileAtomic(join(root, IMAGES_JSON), tokenText)
      changed = true
    }
    if (wasLink) await rm(join(root, IMAGE_LISTS_DIR), {recursive: true, force: true})
  }
  const token = lockToken(tokenText)
  if ((await readFile(join(root, IMAGES_LOCK), 'utf8').catch(() => undefined)) !== token) await writeFileAtomic(join(root, IMAGES_LOCK), token)
  return changed
}

/** What the model needs of one record, and its manifest and config bytes. */
async function additionFor(root: string, record: ImageRecord, now: string, blobs: Map<string, Buffer>): Promise<ImageAddition> {
  if (!(await pathExists(join(root, flatRootRel(record.configDigest))))) {
    throw new BugError(`podman store: the flat root of ${record.name} (${flatRootRel(record.configDigest)}) is missing`)
  }
  for (const digest of [record.manifestDigest, record.configDigest]) {
    if (blobs.has(digest)) continue
    const bytes = await readFile(join(root, blobRel(digest))).catch(() => undefined)
    if (!bytes) {
      throw new UserError(`podman store: ${blobRel(digest)} (the ${digest === record.configDigest ? 'config' : 'manifest'} of ${record.name}) is missing`, {
        code: 'E_PODMAN_STORE_BLOB',
        hint: 'Publish the image again: publish keeps the original manifest and config there.',
      })
    }
    blobs.set(digest, bytes)
  }
  return {
    name: podmanName(record.name) ?? record.reference,
    configDigest: record.configDigest,
    manifestDigest: record.manifestDigest,
    manifestSize: blobs.get(record.manifestDigest)!.length,
    configSize: blobs.get(record.configDigest)!.length,
    size: record.size,
    created: storeDate(record.created, storeDate(record.published, now)),
    now,
    ...(record.arch === undefined ? {} : {arch: record.arch}),
  }
}

/** Layers no image uses whose `diff` leads nowhere: their flat root was collected. */
async function deadLayers(root: string, state: StoreState): Promise<Set<string>> {
  const used = new Set([...(state.lists?.values() ?? [state.images])].flat().map((image) => image.layer))
  const dead = new Set<string>()
  for (const layer of state.layers) {
    if (used.has(layer.id) || layer.parent !== undefined) continue
    if (!(await stat(join(root, layerDirRel(layer.id), 'diff')).then(() => true, () => false))) dead.add(layer.id)
  }
  return dead
}

/** Directories and the store's own nested catalog (it changes with every publish; the root catalog need not). */
async function ensureSkeleton(root: string): Promise<void> {
  for (const dir of [LINK_DIR, LAYERS_DIR, IMAGES_DIR]) await mkdir(join(root, dir), {recursive: true, mode: 0o755})
  const marker = join(root, PODMAN_STORE_DIR, CATALOG_MARKER)
  if (!(await pathExists(marker))) await writeFileAtomic(marker, '')
}

/** `overlay/<id>/diff -> flat root`, `overlay/<id>/link`, `overlay/l/<link> -> ../<id>/diff`. */
async function writeLayerFiles(root: string, layerId: string, configDigest: string): Promise<void> {
  const dir = join(root, layerDirRel(layerId))
  await mkdir(dir, {recursive: true, mode: 0o755})
  await ensureSymlink(join(dir, 'diff'), diffLinkTarget(configDigest))
  // A link name another writer (DUCC) chose stays: it may be in `lower` files on nodes.
  let linkId = (await readFile(join(dir, 'link'), 'utf8').catch(() => '')).trim()
  if (!linkId) {
    linkId = shortLinkId(layerId)
    await writeFileAtomic(join(dir, 'link'), linkId)
  }
  await ensureSymlink(join(root, shortLinkRel(linkId)), shortLinkTarget(layerId))
}

async function removeLayerFiles(root: string, layerId: string): Promise<void> {
  const dir = join(root, layerDirRel(layerId))
  const linkId = (await readFile(join(dir, 'link'), 'utf8').catch(() => '')).trim()
  if (linkId && !linkId.includes('/')) await rm(join(root, shortLinkRel(linkId)), {force: true})
  await rm(dir, {recursive: true, force: true})
}

/** One file per big-data item of this change (items of other writers are theirs). */
async function writeImageFiles(root: string, image: StoreImage, blobs: Map<string, Buffer>): Promise<void> {
  const dir = join(root, imageDirRel(image.id))
  await mkdir(dir, {recursive: true, mode: 0o755})
  for (const key of image['big-data-names'] ?? []) {
    const digest = image['big-data-digests']?.[key]
    const bytes = digest === undefined ? undefined : blobs.get(digest)
    if (!bytes) continue
    const file = join(dir, bigDataFileName(key))
    const current = await readFile(file).catch(() => undefined)
    if (!current?.equals(bytes)) await writeFileAtomic(file, bytes)
  }
}

async function ensureSymlink(path: string, target: string): Promise<void> {
  if ((await readlink(path).catch(() => undefined)) !== target) await replaceSymlink(path, target)
}

/**
 * Replace a JSON file atomically unless it already holds `text`, then its lock file's
 * token (which may be missing or stale even when the JSON is current: DUCC writes empty
 * lock files). True when the JSON was written.
 */
async function writeList(root: string, rel: string, lockRel: string, text: string, current: string | undefined): Promise<boolean> {
  const changed = text !== current
  if (changed) await writeFileAtomic(join(root, rel), text)
  const token = lockToken(text)
  if ((await readFile(join(root, lockRel), 'utf8').catch(() => undefined)) !== token) await writeFileAtomic(join(root, lockRel), token)
  return changed
}

async function readList<T>(root: string, rel: string): Promise<{list: T[]; text?: string}> {
  let text: string
  try {
    text = await readFile(join(root, rel), 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {list: []}
    throw error
  }
  let list: unknown
  try {
    list = text.trim() === '' ? [] : JSON.parse(text)
  } catch (error) {
    list = error
  }
  if (!Array.isArray(list) || !list.every((entry) => typeof entry?.id === 'string')) {
    throw new UserError(`podman store: ${join(root, rel)} is not a list of containers-storage entries`, {
      code: 'E_PODMAN_STORE_CORRUPT',
      hint: `Something other than cvmfs-oci or DUCC wrote it. Move ${join(root, PODMAN_STORE_DIR)} away and publish again.`,
    })
  }
  return {list: list as T[], text}
}


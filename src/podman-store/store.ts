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
import {mkdir, readFile, readlink, rm, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {BugError, UserError} from '../errors.js'
import {pathExists} from '../layout/exists.js'
import {blobRel, CATALOG_MARKER, flatRootRel} from '../layout/paths.js'
import {replaceSymlink, writeFileAtomic, type ImageRecord} from '../layout/write.js'
import type {Logger} from '../log.js'
import {applyChange, storeDate, type ImageAddition, type StoreImage, type StoreLayer, type StoreState} from './model.js'
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
  LAYERS_LOCK,
  LINK_DIR,
  lockToken,
  PODMAN_STORE_DIR,
  podmanName,
  shortLinkId,
  shortLinkRel,
  shortLinkTarget,
} from './paths.js'

export interface StoreChange {
  /** Names published or re-pointed in this change (their records and blobs are already written). */
  add?: ImageRecord[]
  /** Public names removed in this change (link names, or podman references). */
  remove?: string[]
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
  const [images, layers] = await Promise.all([readList<StoreImage>(root, IMAGES_JSON), readList<StoreLayer>(root, LAYERS_JSON)])
  const state: StoreState = {images: images.list, layers: layers.list}
  if (!change.add?.length && state.images.length === 0 && state.layers.length === 0) return

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
  })

  await ensureSkeleton(root)
  for (const layerId of update.writeLayers) await writeLayerFiles(root, layerId, flatRoots.get(layerId)!)
  await writeList(root, LAYERS_JSON, LAYERS_LOCK, JSON.stringify(update.layers), layers.text)
  for (const id of update.writeImages) await writeImageFiles(root, update.images.find((i) => i.id === id)!, blobs)
  const imagesChanged = await writeList(root, IMAGES_JSON, IMAGES_LOCK, JSON.stringify(update.images), images.text)

  for (const id of update.droppedImages) await rm(join(root, imageDirRel(id)), {recursive: true, force: true})
  for (const layerId of update.droppedLayers) await removeLayerFiles(root, layerId)

  if (imagesChanged || update.droppedLayers.length > 0) {
    const names = update.images.reduce((n, image) => n + (image.names?.length ?? 0), 0)
    logger.info(
      `${PODMAN_STORE_DIR}: ${update.images.length} image(s), ${names} name(s)` +
        (update.droppedImages.length ? `; dropped ${update.droppedImages.length} image(s) no name points to` : '') +
        (update.droppedLayers.length ? `; pruned ${update.droppedLayers.length} layer(s) whose flat root is gone` : ''),
    )
  }
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
  }
}

/** Layers no image uses whose `diff` leads nowhere: their flat root was collected. */
async function deadLayers(root: string, state: StoreState): Promise<Set<string>> {
  const used = new Set(state.images.map((image) => image.layer))
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


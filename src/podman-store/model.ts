/**
 * The two JSON files of the store and how a change of the repository changes them. Pure:
 * the I/O is in store.ts. Field names and meanings, checked against containers/storage:
 *
 * layers.json (layers.go, `Layer`): `id`; `parent` (none: the flat root is a whole root
 * file system); `created`; `diff-digest` and `diff-size` (`UncompressedDigest`/`Size`:
 * without the digest `Size()` returns -1 and podman fails with "size for layer … is
 * unknown").
 *
 * images.json (images.go, `Image`): `id` (podman's image ID, the config digest's hex);
 * `digest` (the manifest digest podman shows and finds the image by); `names` (unique
 * across the store: a read-only store naming one name twice fails to load); `layer` (the top
 * layer); `big-data-names`, `big-data-sizes`, `big-data-digests` (one file each in
 * `overlay-images/<id>/`: the first manifest under `manifest`, another one of the same
 * config under `manifest-<digest>`, the config under its digest; the digests of
 * `manifest*` items are the image's digests);
 * `created` (c/image sets it from the config's `created`).
 *
 * Fields we do not write are kept as they are, so entries written by DUCC or by a newer
 * cvmfs-oci survive an update.
 */
import {archDirCandidates} from '../layout/arch-names.js'
import {digestHex} from '../layout/paths.js'
import {flatLayerDiffDigest, flatLayerId, MANIFEST_KEY, manifestKey} from './paths.js'

export interface StoreLayer {
  id: string
  parent?: string
  created?: string
  'diff-digest'?: string
  'diff-size'?: number
  [field: string]: unknown
}

export interface StoreImage {
  id: string
  digest?: string
  names?: string[]
  layer?: string
  'big-data-names'?: string[]
  'big-data-sizes'?: Record<string, number>
  'big-data-digests'?: Record<string, string>
  created?: string
  [field: string]: unknown
}

/** One image to add, or one more name for it, with the bytes it needs. */
export interface ImageAddition {
  /** podman's name for it, e.g. `docker.io/library/ubuntu:22.04`. */
  name: string
  configDigest: string
  manifestDigest: string
  manifestSize: number
  configSize: number
  /** Bytes of file content in the flat root (the layer's `diff-size`). */
  size: number
  /** RFC 3339: the image's own creation date (or when it was published). */
  created: string
  /** RFC 3339: now, for a layer written the first time. */
  now: string
  /**
   * One platform of a multi-platform name: its `.multiarch` directory. The name then goes
   * into that platform's list only (and the change's other additions of the name decide
   * the other lists); without it, into every list.
   */
  arch?: string
}

export interface StoreChange {
  add: ImageAddition[]
  /** podman names to drop. */
  removeNames: string[]
  /** Layers whose `diff` no longer leads anywhere (their flat root was collected). */
  deadLayers: Set<string>
  /** The architecture of the list readers get where CVMFS_ARCH is unset (default: the state's, else amd64). */
  defaultArch?: string
}

export interface StoreState {
  /** The one list, or (with `lists`) the default architecture's. */
  images: StoreImage[]
  layers: StoreLayer[]
  /**
   * Once some name has several platforms: one list per `.multiarch` directory, each with
   * every single-platform name and that platform's image of each multi-platform one.
   */
  lists?: Map<string, StoreImage[]>
  /** With `lists`: the architecture readers get where CVMFS_ARCH is unset. */
  defaultArch?: string
}

export interface StoreUpdate extends StoreState {
  /** Image ids whose files must be written before images.json names them. */
  writeImages: string[]
  /** Layer ids whose files must be written before layers.json names them. */
  writeLayers: string[]
  /** Image ids gone from every list: their directories go after the lists are written. */
  droppedImages: string[]
  /** Layer ids gone from layers.json: their directories and short links go after it is written. */
  droppedLayers: string[]
}

/**
 * Apply a change. An image lives as long as one name points at it: a name added to one
 * image is taken from any other, and an image left without names is dropped. Its layer
 * stays until its flat root is gone (`deadLayers`) — a reader that loaded images.json
 * just before the drop, or a stopped container on a node, still finds it — and goes only
 * if no image still uses it.
 *
 * Names are unique within a list (containers/storage refuses a read-only store naming one
 * name twice), so the platforms of a multi-platform name go into one list each: a list per
 * platform directory, plus the default architecture's. A list made later starts with the
 * single-platform names (those naming one image in every list); when no name has several
 * platforms any more, the lists collapse into one.
 */
export function applyChange(state: StoreState, change: StoreChange): StoreUpdate {
  const layers = state.layers.map((layer) => ({...layer}))
  const writeLayers = new Set<string>()
  for (const addition of change.add) addLayer(layers, writeLayers, addition)

  const old = state.lists ?? new Map([['', state.images]])
  const single = sameEverywhere(old)
  const multiNames = new Set(change.add.filter((a) => a.arch !== undefined).map((a) => a.name))
  const keys = new Set(state.lists?.keys() ?? [])
  for (const addition of change.add) if (addition.arch !== undefined) keys.add(addition.arch)
  const defaultArch = change.defaultArch ?? state.defaultArch ?? 'amd64'
  if (keys.size > 0) keys.add(defaultKey(keys, defaultArch))

  const lists = new Map<string, StoreImage[]>()
  const writeImages = new Set<string>()
  for (const key of keys.size > 0 ? [...keys].sort() : ['']) {
    const base = old.get(key) ?? seed(old, single)
    const add = change.add.filter((a) => a.arch === undefined || a.arch === key)
    const remove = [...change.removeNames, ...[...multiNames].filter((name) => !add.some((a) => a.name === name))]
    const applied = applyImages(base, add, remove)
    lists.set(key, applied.images)
    for (const id of applied.written) writeImages.add(id)
  }

  // Lists holding only single-platform names are the default's twins: they go (all of them, once none is left).
  const nowSingle = sameEverywhere(lists)
  const main = keys.size > 0 ? defaultKey(keys, defaultArch) : ''
  for (const [key, images] of lists) {
    const ownNames = images.some((image) => image.names!.some((name) => nowSingle.get(name) !== image.id))
    if (key !== main && !ownNames) lists.delete(key)
  }
  const multi = lists.size > 1

  const kept = [...lists.values()].flat()
  const keptIds = new Set(kept.map((image) => image.id))
  const droppedImages = [...new Set([...old.values()].flat().map((image) => image.id))].filter((id) => !keptIds.has(id))
  const used = usedLayers(kept, layers)
  const keptLayers = layers.filter((layer) => used.has(layer.id) || !change.deadLayers.has(layer.id))
  const droppedLayers = layers.filter((layer) => !keptLayers.includes(layer)).map((layer) => layer.id)
  return {
    images: lists.get(main)!,
    layers: keptLayers,
    ...(multi ? {lists, defaultArch} : {}),
    writeImages: [...writeImages].filter((id) => keptIds.has(id)),
    writeLayers: [...writeLayers],
    droppedImages,
    droppedLayers,
  }
}

/** The list key the default architecture reads: its own directory, or the one its alias leads to. */
export function defaultKey(keys: Iterable<string>, defaultArch: string): string {
  const present = new Set(keys)
  return archDirCandidates(defaultArch).find((dir) => present.has(dir)) ?? defaultArch
}

/** Names naming the same image in every list (single-platform names), and that image. */
function sameEverywhere(lists: Map<string, StoreImage[]>): Map<string, string> {
  const result = new Map<string, string>()
  const all = [...lists.values()]
  for (const image of all[0] ?? []) {
    for (const name of image.names ?? []) {
      if (all.every((list) => list.some((other) => other.id === image.id && other.names?.includes(name)))) result.set(name, image.id)
    }
  }
  return result
}

/** A new list: the single-platform names of the old ones, on their images. */
function seed(old: Map<string, StoreImage[]>, single: Map<string, string>): StoreImage[] {
  const first = [...old.values()][0] ?? []
  return first
    .map((image) => ({...image, names: image.names?.filter((name) => single.get(name) === image.id)}))
    .filter((image) => (image.names?.length ?? 0) > 0)
}

/** The flat layer of an addition, once. */
function addLayer(layers: StoreLayer[], written: Set<string>, addition: ImageAddition): void {
  const layerId = flatLayerId(addition.configDigest)
  if (!layers.some((l) => l.id === layerId)) {
    layers.push({
      id: layerId,
      created: addition.now,
      'diff-digest': flatLayerDiffDigest(layerId),
      'diff-size': addition.size,
    })
  }
  written.add(layerId)
}

/** One list: names moved, removed and added, images left without names dropped. */
function applyImages(list: StoreImage[], add: ImageAddition[], remove: string[]): {images: StoreImage[]; written: string[]} {
  const images = list.map((image) => ({...image, names: image.names ? [...image.names] : undefined}))
  const written = new Set<string>()
  // A name belongs to one image: drop it wherever it no longer belongs, keep it (in place) where it does.
  const removed = new Set(remove)
  const owner = new Map(add.map((a) => [a.name, digestHex(a.configDigest)]))
  for (const image of images) {
    const stays = (n: string) => (owner.has(n) ? owner.get(n) === image.id : !removed.has(n))
    if (image.names && !image.names.every(stays)) image.names = image.names.filter(stays)
  }

  for (const addition of add) {
    const id = digestHex(addition.configDigest)
    const layerId = flatLayerId(addition.configDigest)
    let image = images.find((i) => i.id === id)
    if (!image) {
      image = {id, digest: addition.manifestDigest, names: [], layer: layerId, created: addition.created}
      images.push(image)
    }
    if (!image.names?.includes(addition.name)) image.names = [...(image.names ?? []), addition.name]
    // An entry DUCC wrote with per-layer trees (whose AUFS whiteouts overlay ignores) moves onto the flat root.
    image.layer = layerId
    image.digest ??= addition.manifestDigest
    // The first manifest is the default (`manifest`); another one (same config, say
    // recompressed under another tag) is kept as `manifest-<digest>`, which is what c/image
    // reads for `name@digest`. images.json is fetched whole by every node after every
    // publish, so an item is written once, not twice.
    const manifests = image['big-data-digests'] ?? {}
    const known = Object.entries(manifests).some(([key, d]) => key.startsWith(MANIFEST_KEY) && d === addition.manifestDigest)
    if (!known) {
      const key = MANIFEST_KEY in manifests ? manifestKey(addition.manifestDigest) : MANIFEST_KEY
      addBigData(image, key, addition.manifestDigest, addition.manifestSize)
    }
    addBigData(image, addition.configDigest, addition.configDigest, addition.configSize)
    written.add(id)
  }
  return {images: images.filter((image) => (image.names?.length ?? 0) > 0), written: [...written]}
}

/** Record a big-data item (its file is written by store.ts). */
function addBigData(image: StoreImage, key: string, digest: string, size: number): void {
  const names = image['big-data-names'] ?? []
  image['big-data-names'] = names.includes(key) ? names : [...names, key]
  image['big-data-sizes'] = {...image['big-data-sizes'], [key]: size}
  image['big-data-digests'] = {...image['big-data-digests'], [key]: digest}
}

/** Layers the images stand on: each top layer and its parents. */
function usedLayers(images: StoreImage[], layers: StoreLayer[]): Set<string> {
  const byId = new Map(layers.map((layer) => [layer.id, layer]))
  const used = new Set<string>()
  for (const image of images) {
    let id = image.layer
    while (id && !used.has(id)) {
      used.add(id)
      id = byId.get(id)?.parent
    }
  }
  return used
}

/**
 * A date containers/storage can read: Go's time.Time takes RFC 3339 only, and one bad
 * date makes the whole images.json unreadable for every image. Anything else gives `fallback`.
 */
export function storeDate(value: string | undefined, fallback: string): string {
  if (!value || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return fallback
  return Number.isNaN(Date.parse(value)) ? fallback : value
}

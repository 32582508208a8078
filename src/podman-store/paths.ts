/**
 * Where things live in `podmanStore/`, a containers-storage "overlay" store that podman
 * reads as an additional image store, and the names containers/storage gives them. Pure:
 * nothing here touches the disk. Paths are relative to the repository root unless said.
 *
 * Checked against containers/storage (store.go, layers.go, images.go,
 * drivers/overlay/overlay.go): for an additional store S and driver "overlay", layers are
 * read from S/overlay-layers/layers.json, images from S/overlay-images/images.json, a
 * layer's files from S/overlay/<layer id>/ (`diff`, `link`, `lower`) and its short link
 * from S/overlay/l/<link>; an image's "big data" item KEY is the file
 * S/overlay-images/<image id>/<makeBigDataBaseName(KEY)>.
 */
import {crypto} from '../builtins.js'
import {join} from 'node:path'

import {digestHex, flatRootRel} from '../layout/paths.js'
import {formatReference, parseLayoutName, parseReference} from '../reference/reference.js'

/** The store, at the repository's top level (not hidden), as DUCC names it. */
export const PODMAN_STORE_DIR = 'podmanStore'
/** The overlay driver's home in the store: layer directories and `l/`. */
export const OVERLAY_DIR = join(PODMAN_STORE_DIR, 'overlay')
/** Short links, `l/<26 chars> -> ../<layer id>/diff`, keep mount options short. */
export const LINK_DIR = join(OVERLAY_DIR, 'l')
export const LAYERS_DIR = join(PODMAN_STORE_DIR, 'overlay-layers')
export const IMAGES_DIR = join(PODMAN_STORE_DIR, 'overlay-images')
export const LAYERS_JSON = join(LAYERS_DIR, 'layers.json')
export const IMAGES_JSON = join(IMAGES_DIR, 'images.json')
/**
 * podman opens these even on a read-only store, and fails with EROFS if they are missing.
 * Their content is containers/storage's "last write" token: see {@link lockToken}.
 */
export const LAYERS_LOCK = join(LAYERS_DIR, 'layers.lock')
export const IMAGES_LOCK = join(IMAGES_DIR, 'images.lock')

/**
 * Per-architecture image lists, once a name has several platforms:
 * `overlay-images/.multiarch/<arch>/images.json`, with alias links for the names CVMFS
 * clients give CVMFS_ARCH, and images.json the variant link {@link imagesVariantTarget}.
 */
export const IMAGE_LISTS_DIR = join(IMAGES_DIR, '.multiarch')

/** `podmanStore/overlay-images/.multiarch/<arch>/images.json`. */
export function imageListRel(arch: string): string {
  return join(IMAGE_LISTS_DIR, arch, 'images.json')
}

/** Target of images.json with per-architecture lists: the CVMFS client picks the node's. */
export function imagesVariantTarget(defaultArch: string): string {
  return `.multiarch/$(CVMFS_ARCH:-${defaultArch})/images.json`
}

/** The default of such a target, as read; undefined for any other. */
export function variantDefault(target: string): string | undefined {
  const m = /^\.multiarch\/\$\(CVMFS_ARCH:-([^)/]+)\)\/images\.json$/.exec(target)
  return m?.[1]
}

/** containers/storage's big-data key of the image's default manifest (`ImageDigestBigDataKey`). */
export const MANIFEST_KEY = 'manifest'
/** The length of the overlay driver's short link names (`idLength`). */
export const LINK_ID_LENGTH = 26

const sha256Hex = (text: string) => crypto().createHash('sha256').update(text).digest('hex')

/**
 * The id of the one synthetic layer of an image: DUCC's rule, sha256 of
 * `"cvmfs-flat-layer:" + <image id>` where the image id is the config digest's hex. So a
 * store written by DUCC and one written by cvmfs-oci agree on every id.
 */
export function flatLayerId(configDigest: string): string {
  return sha256Hex(`cvmfs-flat-layer:${digestHex(configDigest)}`)
}

/**
 * The layer's `diff-digest`. containers/storage finds layers by it (`LayersByUncompressedDigest`)
 * to reuse them when pulling, and c/image exports a layer instead of a config blob when
 * the two digests match; the flat root is no layer of any image, so its digest must match
 * nothing real: `sha256:<layer id>` (as DUCC does), the digest of no tar.
 */
export function flatLayerDiffDigest(layerId: string): string {
  return `sha256:${layerId}`
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * The layer's short link name: 26 characters of RFC 4648 base32, the alphabet the overlay
 * driver draws its random ones from. Derived from the layer id, so re-publishing writes the
 * same name and nothing is left to go stale.
 */
export function shortLinkId(layerId: string): string {
  const bytes = crypto().createHash('sha256').update(`cvmfs-oci-link:${layerId}`).digest()
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5 && out.length < LINK_ID_LENGTH) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  return out
}

/**
 * The content of a lock file: 64 hex digits, derived from the JSON file it guards.
 * containers/storage 1.43 (podman 4.3) asks the lock file whether the store changed before
 * every access, by reading as many bytes as its own 64-character token: an empty file
 * always answers "changed", so podman parses images.json again for every image it looks
 * at — `podman images` over 1000 images took 157 s with empty lock files and 5 s with
 * tokens. A token that changes with the file also tells a long-running reader to reload.
 */
export function lockToken(json: string): string {
  return sha256Hex(`cvmfs-oci-lock:${json}`)
}

/** `podmanStore/overlay/<layer id>`. */
export function layerDirRel(layerId: string): string {
  return join(OVERLAY_DIR, layerId)
}

/** `podmanStore/overlay/l/<link>`. */
export function shortLinkRel(linkId: string): string {
  return join(LINK_DIR, linkId)
}

/** Target of `l/<link>`, as the overlay driver writes it. */
export function shortLinkTarget(layerId: string): string {
  return `../${layerId}/diff`
}

/**
 * Target of `overlay/<layer id>/diff`: the flat root, relative (three levels up to the
 * repository root), so the store works wherever the repository is mounted.
 */
export function diffLinkTarget(configDigest: string): string {
  return `../../../${flatRootRel(configDigest)}`
}

/** `podmanStore/overlay-images/<image id>`. */
export function imageDirRel(imageId: string): string {
  return join(IMAGES_DIR, imageId)
}

/** The big-data key under which c/image keeps one manifest of an image (`manifestBigDataKey`). */
export function manifestKey(manifestDigest: string): string {
  return `manifest-${manifestDigest}`
}

/**
 * containers/storage's `makeBigDataBaseName`: a key made only of `[a-z0-9.]` is its own
 * file name; any other is `=` + base64 of the key (`sha256:ab…` → `=c2hhMjU2Om…`).
 */
export function bigDataFileName(key: string): string {
  return /^[a-z0-9.]*$/.test(key) ? key : `=${Buffer.from(key, 'utf8').toString('base64')}`
}

/**
 * The name podman knows an image by, for a public link name of the repository:
 * `registry.hub.docker.com/library/ubuntu:22.04` → `docker.io/library/ubuntu:22.04`,
 * `host:5000/x:sha256:<hex>` → `host:5000/x@sha256:<hex>`. A reference already in podman's
 * form maps to itself. `undefined` when it is neither.
 */
export function podmanName(name: string): string | undefined {
  for (const parse of [parseLayoutName, parseReference]) {
    try {
      return formatReference(parse(name))
    } catch {
      // try the next reading
    }
  }
  return undefined
}

/**
 * Media types of the OCI image spec and of Docker's manifest v2 schema 2, and the
 * few questions the rest of cvmfs-oci asks about them. Registries serve both
 * families, often mixed (a Docker manifest list pointing at OCI manifests), so every
 * check here accepts either.
 */

// OCI image-spec
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
/** The "empty" descriptor of image-spec 1.1 (`{}`), used as config by artifacts. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'
export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
/** Non-distributable layers (deprecated in image-spec 1.1, still found in Windows images). */
export const OCI_LAYER_NONDISTRIBUTABLE_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar'
export const OCI_LAYER_NONDISTRIBUTABLE_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'
export const OCI_LAYER_NONDISTRIBUTABLE_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd'

// Docker manifest v2 schema 2
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
/** Layers that must be fetched from their `urls` (Windows base layers); DUCC skips them. */
export const DOCKER_FOREIGN_LAYER_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'

// Docker manifest v2 schema 1: recognised only to reject it with a useful message.
export const DOCKER_SCHEMA1_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+json'
export const DOCKER_SCHEMA1_SIGNED_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

export const MANIFEST_MEDIA_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST]
export const INDEX_MEDIA_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST]
export const CONFIG_MEDIA_TYPES: readonly string[] = [OCI_CONFIG, DOCKER_CONFIG]
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST]

const FOREIGN_LAYERS: readonly string[] = [
  DOCKER_FOREIGN_LAYER_GZIP,
  OCI_LAYER_NONDISTRIBUTABLE_TAR,
  OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  OCI_LAYER_NONDISTRIBUTABLE_ZSTD,
]

/** An OCI image index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_MEDIA_TYPES.includes(mediaType)
}

/** An OCI image manifest or a Docker v2 schema 2 manifest (not schema 1). */
export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_MEDIA_TYPES.includes(mediaType)
}

/** A Docker schema 1 manifest (signed or not). */
export function isSchema1MediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && SCHEMA1_MEDIA_TYPES.includes(mediaType)
}

/**
 * A layer that is not part of the image as distributed: Docker's foreign layers and
 * OCI's non-distributable ones (the same idea under two names). Like DUCC, cvmfs-oci
 * leaves them out of the unpacked tree: they are Windows base layers whose licence
 * forbids redistribution, which is what publishing into a repository would be.
 */
export function isForeignLayer(mediaType: string): boolean {
  return FOREIGN_LAYERS.includes(mediaType)
}

/**
 * How a layer blob is compressed, from its media type; `undefined` for a media
 * type that is not a layer we know (the caller decides whether to sniff or refuse).
 */
export function layerCompression(mediaType: string): 'none' | 'gzip' | 'zstd' | undefined {
  switch (mediaType) {
    case OCI_LAYER_TAR:
    case OCI_LAYER_NONDISTRIBUTABLE_TAR:
      return 'none'
    case OCI_LAYER_GZIP:
    case OCI_LAYER_NONDISTRIBUTABLE_GZIP:
    case DOCKER_LAYER_GZIP:
    case DOCKER_FOREIGN_LAYER_GZIP:
      return 'gzip'
    case OCI_LAYER_ZSTD:
    case OCI_LAYER_NONDISTRIBUTABLE_ZSTD:
      return 'zstd'
    default:
      return undefined
  }
}

/**
 * Where things live in a repository, in DUCC's layout (../shared/docs/ducc-layout.md,
 * summarised in docs/layout.md). Pure path arithmetic: nothing here touches the disk.
 * All functions return paths relative to the repository root unless named `…Abs`.
 */
import {join} from 'node:path'

export const FLAT_DIR = '.flat'
export const LAYERS_DIR = '.layers'
export const METADATA_DIR = '.metadata'
export const MULTIARCH_DIR = '.multiarch'
export const CATALOG_MARKER = '.cvmfscatalog'
/** Our content-addressed copy of original manifest and config bytes (not part of DUCC's layout). */
export const BLOBS_DIR = '.metadata/.blobs/sha256'
/** Our own bookkeeping (staging, locks); never reachable through a public link. */
export const WORK_DIR = '.cvmfs-oci'
/** Where a publish into a plain directory builds a flat root before moving it into place. */
export const STAGING_DIR = join(WORK_DIR, 'staging')
/** Facts about one flat root (size, when unpacked), whatever names point to it. */
export function flatRecordRel(configDigest: string): string {
  const hex = digestHex(configDigest)
  return join(METADATA_DIR, FLAT_DIR, hex.slice(0, 2), `${hex}.json`)
}
/** `.metadata/.chains/<hh>/<hex>`: which flat root holds exactly the layer stack of a ChainID. */
export function chainIndexRel(chainId: string): string {
  const hex = digestHex(chainId)
  return join(METADATA_DIR, CHAINS_DIR, hex.slice(0, 2), hex)
}
export const CHAINS_DIR = '.chains'
/** Per-image record written next to DUCC's manifest.json. */
export const IMAGE_RECORD = 'cvmfs-oci.json'
export const DUCC_MANIFEST = 'manifest.json'

const DIGEST = /^sha256:([a-f0-9]{64})$/

/** The hex part of a `sha256:<hex>` digest; throws on anything else. */
export function digestHex(digest: string): string {
  const m = DIGEST.exec(digest)
  if (!m) throw new TypeError(`not a sha256 digest: ${digest}`)
  return m[1]!
}

/** `.flat/<hh>/<hex>` for an image's config digest (its image ID). */
export function flatRootRel(configDigest: string): string {
  const hex = digestHex(configDigest)
  return join(FLAT_DIR, hex.slice(0, 2), hex)
}

/** `.metadata/<name>`: DUCC's manifest.json and our record for one public name. */
export function metadataDirRel(name: string): string {
  return join(METADATA_DIR, name)
}

/** `.metadata/.multiarch/<arch>/<name>` (DUCC's newer multi-arch metadata). */
export function multiarchMetadataDirRel(arch: string, name: string): string {
  return join(METADATA_DIR, MULTIARCH_DIR, arch, name)
}

/** `.multiarch/<arch>/<name>`: a per-architecture link (DUCC's newer multi-arch layout). */
export function multiarchLinkRel(arch: string, name: string): string {
  return join(MULTIARCH_DIR, arch, name)
}

/** `.metadata/.blobs/sha256/<hex>`: original bytes of a manifest or config. */
export function blobRel(digest: string): string {
  return join(BLOBS_DIR, digestHex(digest))
}

/**
 * The relative target of the public link `<name>` → the flat root, as DUCC writes it:
 * one `../` per directory level of `<registry>/<repository>`.
 */
export function relativeLinkTarget(name: string, configDigest: string): string {
  const depth = name.split('/').length - 1
  return '../'.repeat(depth) + flatRootRel(configDigest)
}

/** The variable CVMFS clients expand in DUCC's multi-arch public links. */
export const ARCH_VARIABLE = 'CVMFS_ARCH'

/**
 * The public link of a multi-platform name, as DUCC writes it: a CVMFS variant link,
 * `../../.multiarch/$(CVMFS_ARCH:-<default>)/<name>` (one `../` per directory of the
 * name), which the client expands to the node's `.multiarch/<arch>/<name>`.
 */
export function variantLinkTarget(name: string, defaultArch: string): string {
  const depth = name.split('/').length - 1
  return `${'../'.repeat(depth)}${MULTIARCH_DIR}/$(${ARCH_VARIABLE}:-${defaultArch})/${name}`
}

/** The relative target of `.multiarch/<arch>/<name>` → the flat root (DUCC: relative to the link's directory). */
export function multiarchLinkTarget(arch: string, name: string, configDigest: string): string {
  return '../'.repeat(multiarchLinkRel(arch, name).split('/').length - 1) + flatRootRel(configDigest)
}

/** Directories whose `.cvmfscatalog` makes them nested catalogs. */
export function catalogDirsRel(configDigest: string): string[] {
  return [FLAT_DIR, flatRootRel(configDigest)]
}

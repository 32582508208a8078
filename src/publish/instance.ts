/**
 * One image instance of a publish source, from the top-level manifest to verified
 * documents: which manifest (an index entry is pinned by digest), how skopeo copies it,
 * its config bytes, the checks of one against the other, and our record of it. Shared by
 * the single-platform publish (publish-image.ts) and the multi-platform one
 * (publish-platforms.ts).
 */
import {mkdirSync} from 'node:fs'
import {join} from 'node:path'

import type {DirectoryResult} from 'tmp-promise'

import type {RepositoryBackend} from '../backends/backend.js'
import {exitOnSignals} from '../backends/signals.js'
import {VerificationError} from '../errors.js'
import type {ImageSource} from '../fetch/source.js'
import {copyToOciLayout, inspectConfigRaw, inspectRaw, ociBlobPath, readOciLayoutManifest, type RegistryOptions, type SkippedBlob} from '../fetch/skopeo.js'
import {readFile} from '../fs-promises.js'
import {blobRel, digestHex} from '../layout/paths.js'
import type {ImageRecord} from '../layout/write.js'
import type {Logger} from '../log.js'
import type {PublishProgress} from './progress.js'
import {sha256Digest} from '../oci/digest.js'
import {parseConfig, parseManifestOrIndex, type Descriptor, type ImageConfig, type ImageManifest, type ManifestOrIndex} from '../oci/documents.js'
import {formatPlatform, type PlatformSpec} from '../oci/platform.js'
import {formatReference} from '../reference/reference.js'
import {verifyConfigBlob, verifyDiffIds, verifyDigest} from './verify.js'

/** The top-level manifest or index of a source, as inspected. */
export interface Top {
  bytes: Buffer
  digest: string
  parsed: ManifestOrIndex
}

/** The manifest of the instance to publish, and what we know about it. */
export interface Chosen {
  manifestBytes?: Buffer
  manifestDigest?: string
  indexBytes?: Buffer
  indexDigest?: string
  /** What skopeo copies (a registry image pinned to the chosen instance, or the source). */
  copyRef: string
  /** The platform skopeo is told to pick. */
  skopeoPlatform: PlatformSpec
}

/**
 * The scratch directory of one publish (its download), removed when the publish ends, and
 * also when SIGINT or SIGTERM stops the process (exitOnSignals: it exits through
 * process.exit, whose handlers remove the directory).
 * tmp-promise is loaded here, not on the way to a command's first line (it loads crypto,
 * os, …).
 */
export async function publishTempDir(tmpDir: string | undefined, logger: Logger): Promise<DirectoryResult> {
  const {dir, setGracefulCleanup} = await import('tmp-promise')
  setGracefulCleanup()
  exitOnSignals(logger)
  return dir({unsafeCleanup: true, tmpdir: tmpDir, prefix: 'cvmfs-oci-'})
}

/**
 * How the roots a publish builds are made, where the options do not say: started from a
 * clone of a published root (hardlinks: plain directories), with nested catalogs (CVMFS).
 */
export function rootChoices(backend: RepositoryBackend, options: {reuseBaseRoots?: boolean; nestedCatalogs?: boolean}): {reuseBaseRoots: boolean; nestedCatalogs: boolean} {
  return {
    reuseBaseRoots: options.reuseBaseRoots ?? backend.hardlinkClones === true,
    nestedCatalogs: options.nestedCatalogs ?? backend.nestedCatalogs === true,
  }
}

/** Inspect the top-level manifest (checked against a digest the reference pins). */
export async function inspectTop(source: ImageSource, registry: RegistryOptions, logger: Logger, signal?: AbortSignal): Promise<Top> {
  const bytes = await inspectRaw(source.skopeoRef, registry, logger, signal)
  const pinned = source.registryRef?.digest
  if (pinned) verifyDigest(bytes, pinned, `manifest of ${source.input}`)
  return {bytes, digest: sha256Digest(bytes), parsed: parseManifestOrIndex(bytes, `manifest of ${source.input}`)}
}

/**
 * The instance of an index entry: for a registry source its manifest is inspected now,
 * pinned by digest (so the manifest checked is the one copied); for other sources skopeo
 * picks it by platform when copying, and the copy is checked against the digest.
 */
export async function pinInstance(source: ImageSource, top: Top, descriptor: Descriptor, fallback: PlatformSpec, registry: RegistryOptions, logger: Logger): Promise<Chosen> {
  const skopeoPlatform = descriptor.platform
    ? {os: descriptor.platform.os, architecture: descriptor.platform.architecture, variant: descriptor.platform.variant}
    : fallback
  const chosen: Chosen = {manifestDigest: descriptor.digest, indexBytes: top.bytes, indexDigest: top.digest, copyRef: source.skopeoRef, skopeoPlatform}
  if (source.registryRef) {
    chosen.copyRef = `docker://${source.registryRef.registry}/${source.registryRef.repository}@${descriptor.digest}`
    chosen.manifestBytes = await inspectRaw(chosen.copyRef, registry, logger)
    verifyDigest(chosen.manifestBytes, descriptor.digest, `manifest of ${chosen.copyRef}`)
  }
  return chosen
}

/** Where {@link fetchInstance} puts the blob of `digest`: in `<dir>/image`, an OCI layout. */
export function fetchedBlobPath(dir: string): (digest: string) => string {
  const image = join(dir, 'image')
  return (digest) => ociBlobPath(image, digestHex(digest))
}

/**
 * Copy the instance into `<dir>/image` and return its manifest bytes, which must be the
 * ones inspected (or carry the digest the index gave). The blobs in `skip` (those of
 * layers a published root already holds) are not fetched.
 */
export async function fetchInstance(
  source: ImageSource,
  chosen: Chosen,
  dir: string,
  options: {registry: RegistryOptions; logger: Logger; signal?: AbortSignal; skip?: readonly SkippedBlob[]; progress?: PublishProgress},
): Promise<Buffer> {
  const skip = options.skip ?? []
  const what = [chosen.indexDigest ? formatPlatform(chosen.skopeoPlatform) : '', skip.length > 0 ? `${skip.length} layer(s) not needed` : ''].filter(Boolean).join('; ')
  options.logger.info(`${source.input}: downloading${what ? ` (${what})` : ''}`)
  // Nothing awaited before skopeo starts (see copyToOciLayout).
  mkdirSync(dir, {recursive: true})
  const image = join(dir, 'image')
  const stopWatching = options.progress?.watchDownload(image, downloadBytes(chosen.manifestBytes, skip), new Set(skip.map((blob) => digestHex(blob.digest))))
  let manifest: Buffer
  try {
    await copyToOciLayout(chosen.copyRef, image, skip, options.registry, chosen.skopeoPlatform, options.logger, options.signal)
    manifest = await readOciLayoutManifest(image)
  } catch (error) {
    stopWatching?.(false)
    throw error
  }
  stopWatching?.(true)
  if (chosen.manifestBytes && !manifest.equals(chosen.manifestBytes)) {
    throw new VerificationError(`${source.input}: the manifest copied differs from the manifest inspected`, {code: 'E_MANIFEST_CHANGED', hint: 'The tag moved while publishing; try again.'})
  }
  if (chosen.manifestDigest) verifyDigest(manifest, chosen.manifestDigest, `manifest of ${source.input}`)
  return manifest
}

/** What a copy of the manifest's blobs brings, but those skipped (unknown without the manifest). */
function downloadBytes(manifestBytes: Buffer | undefined, skip: readonly SkippedBlob[]): number | undefined {
  if (!manifestBytes) return undefined
  try {
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as {config?: {size?: number}; layers?: {digest?: string; size?: number}[]}
    const skipped = new Set(skip.map((blob) => blob.digest))
    const layers = new Map((manifest.layers ?? []).filter((layer) => !skipped.has(layer.digest ?? '')).map((layer) => [layer.digest, layer.size ?? 0]))
    return (manifest.config?.size ?? 0) + [...layers.values()].reduce((sum, size) => sum + size, 0)
  } catch {
    return undefined // an index, or not JSON: checked elsewhere
  }
}

/** The manifest of an instance: parsed, and never an index itself. */
export function instanceManifest(bytes: Buffer, what: string): ImageManifest {
  const parsed = parseManifestOrIndex(bytes, `manifest of ${what}`)
  if (parsed.kind !== 'manifest') {
    throw new VerificationError(`${what}: the chosen instance ${sha256Digest(bytes)} is itself an index`, {code: 'E_NESTED_INDEX'})
  }
  return parsed.manifest
}

/** The config bytes of a fetched instance, from its layout. */
export async function fetchedConfig(dir: string, configDigest: string, what: string): Promise<Buffer> {
  const bytes = await readFile(fetchedBlobPath(dir)(configDigest)).catch(() => undefined)
  if (!bytes) throw new VerificationError(`${what}: config blob ${configDigest} is missing`, {code: 'E_MISSING_BLOB'})
  return bytes
}

/** The config bytes of an instance whose flat root exists: kept in the repository, else asked for alone. */
export async function keptConfig(root: string, configDigest: string, chosen: Chosen, registry: RegistryOptions, logger: Logger): Promise<Buffer> {
  const kept = await readFile(join(root, blobRel(configDigest))).catch(() => undefined)
  return kept ?? inspectConfigRaw(chosen.copyRef, registry, chosen.skopeoPlatform, logger)
}

/** Check the config against its manifest (digest, size, DiffIDs) and parse it. */
export function verifiedConfig(configBytes: Buffer, manifest: ImageManifest, what: string): ImageConfig {
  verifyConfigBlob(configBytes, manifest, what)
  const config = parseConfig(configBytes, `config of ${what}`)
  verifyDiffIds(manifest, config, what)
  return config
}

/** Our record of a published name (or, with `arch`, of one platform of it). */
export function imageRecord(
  source: ImageSource,
  image: {manifestDigest: string; manifest: ImageManifest; config: ImageConfig; size: number; indexDigest?: string; arch?: string},
): ImageRecord {
  const {config} = image
  const record: ImageRecord = {
    reference: formatReference(source.reference),
    name: source.name,
    manifestDigest: image.manifestDigest,
    configDigest: image.manifest.config.digest,
    mediaType: image.manifest.mediaType,
    platform: formatPlatform({os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant}),
    size: image.size,
    created: config.created,
    published: new Date().toISOString(),
    source: source.input,
    indexDigest: image.indexDigest,
  }
  if (image.arch !== undefined) record.arch = image.arch
  return record
}

/**
 * Whether a link target, as read, leads to the flat root `flatRel`: our (DUCC's) relative
 * form, or the absolute `/cvmfs/<repo>/…` form of repositories from before 2019.
 */
export function leadsTo(target: string | undefined, relative: string, flatRel: string): boolean {
  return target === relative || (target?.startsWith('/') === true && target.endsWith(`/${flatRel}`))
}

/**
 * Publish one image: fetch (skopeo → a `dir:` layout in a temp dir), verify
 * (schemas, digests, sizes, DiffIDs, platform), merge the layers into a staging
 * directory inside the repository, rename it to `.flat/<hh>/<confighex>`, then
 * write metadata and, last, the public link. An image whose flat root already
 * exists costs no layer download; one whose name already points at the root of its
 * config digest costs no change of the repository at all.
 */
import {readFile, readlink} from 'node:fs/promises'
import {join} from 'node:path'

import {dir as tempDir} from 'tmp-promise'

import type {RepositoryBackend} from '../backends/backend.js'
import {VerificationError} from '../errors.js'
import type {ImageSource} from '../fetch/source.js'
import {copyToDir, inspectConfigRaw, inspectRaw, readDirLayout, type RegistryOptions} from '../fetch/skopeo.js'
import {pathExists} from '../layout/exists.js'
import {blobRel, digestHex, flatRootRel, metadataDirRel, relativeLinkTarget} from '../layout/paths.js'
import {readImageRecord} from '../layout/list.js'
import {addRuntimeFiles} from '../layout/singularity.js'
import {readFlatRecord, writeImageMetadata, type ImageRecord} from '../layout/write.js'
import {formatBytes, type Logger} from '../log.js'
import {sha256Digest} from '../oci/digest.js'
import {parseConfig, parseManifestOrIndex, type ImageConfig, type ImageManifest} from '../oci/documents.js'
import {toDuccManifest} from '../oci/ducc-manifest.js'
import {choosePlatform, formatPlatform, type PlatformSpec} from '../oci/platform.js'
import {updatePodmanStore} from '../podman-store/store.js'
import {formatReference} from '../reference/reference.js'
import {buildFlatRoot} from './build-root.js'
import {checkPlatform, verifyConfigBlob, verifyDiffIds, verifyDigest} from './verify.js'

export interface PublishOptions {
  /** The platform to publish from an index; `explicit` when the user gave --platform. */
  platform: PlatformSpec
  explicitPlatform: boolean
  registry: RegistryOptions
  logger: Logger
  /** Where downloads go (default: the system temp dir). */
  tmpDir?: string
  signal?: AbortSignal
  /** Start a merge from a published root with the same first layers (hardlinks: plain directories only). */
  reuseBaseRoots?: boolean
  /** Decide the status only (`sync --dry-run`): no layer is fetched, nothing is written. */
  dryRun?: boolean
}

export type PublishStatus = 'published' | 'linked' | 'unchanged'

export interface PublishResult {
  source: string
  reference: string
  name: string
  status: PublishStatus
  manifestDigest: string
  configDigest: string
  platform: string
  /** Absolute path of the flat root. */
  path: string
  size: number
  layers: number
  /** Mount points added to the flat root (relative paths). */
  added: string[]
  seconds: number
}

/** The manifest of the instance to publish, and what we know about it. */
interface Chosen {
  manifestBytes?: Buffer
  manifestDigest?: string
  indexBytes?: Buffer
  indexDigest?: string
  /** What skopeo copies (a registry image pinned to the chosen instance, or the source). */
  copyRef: string
  /** The platform skopeo is told to pick. */
  skopeoPlatform: PlatformSpec
}

/** Top-level manifest → the instance to publish. */
async function choose(source: ImageSource, options: PublishOptions): Promise<Chosen> {
  const {logger} = options
  const topBytes = await inspectRaw(source.skopeoRef, options.registry, logger)
  const topDigest = sha256Digest(topBytes)
  const pinned = source.registryRef?.digest
  if (pinned) verifyDigest(topBytes, pinned, `manifest of ${source.input}`)
  const top = parseManifestOrIndex(topBytes, `manifest of ${source.input}`)
  if (top.kind === 'manifest') {
    return {manifestBytes: topBytes, manifestDigest: topDigest, copyRef: source.skopeoRef, skopeoPlatform: options.platform}
  }
  const descriptor = choosePlatform(top.index, options.platform, source.input)
  const skopeoPlatform = descriptor.platform
    ? {os: descriptor.platform.os, architecture: descriptor.platform.architecture, variant: descriptor.platform.variant}
    : options.platform
  const chosen: Chosen = {manifestDigest: descriptor.digest, indexBytes: topBytes, indexDigest: topDigest, copyRef: source.skopeoRef, skopeoPlatform}
  if (source.registryRef) {
    // Pin the instance, so the manifest we checked is the one copied.
    chosen.copyRef = `docker://${source.registryRef.registry}/${source.registryRef.repository}@${descriptor.digest}`
    chosen.manifestBytes = await inspectRaw(chosen.copyRef, options.registry, logger)
    verifyDigest(chosen.manifestBytes, descriptor.digest, `manifest of ${chosen.copyRef}`)
  }
  return chosen
}

export async function publishImage(backend: RepositoryBackend, source: ImageSource, options: PublishOptions): Promise<PublishResult> {
  const started = Date.now()
  const {logger} = options
  const root = backend.root
  logger.info(`${source.input}: fetching manifest (${formatPlatform(options.platform)})`)
  const chosen = await choose(source, options)
  const temp = await tempDir({unsafeCleanup: true, tmpdir: options.tmpDir, prefix: 'cvmfs-oci-'})
  // A download running while layers are unpacked (see below), stopped if anything fails.
  let download: Promise<void> | undefined
  const stopDownload = new AbortController()
  try {
    let manifestBytes = chosen.manifestBytes
    let configBytes: Buffer | undefined
    let fetched = false
    const fetchAll = async () => {
      logger.info(`${source.input}: downloading`)
      const signal = options.signal ? AbortSignal.any([options.signal, stopDownload.signal]) : stopDownload.signal
      await copyToDir(chosen.copyRef, join(temp.path, 'image'), options.registry, chosen.skopeoPlatform, logger, signal)
      fetched = true
      const layout = await readDirLayout(join(temp.path, 'image'))
      if (manifestBytes && !layout.manifest.equals(manifestBytes)) {
        throw new VerificationError(`${source.input}: the manifest copied differs from the manifest inspected`, {code: 'E_MANIFEST_CHANGED', hint: 'The tag moved while publishing; try again.'})
      }
      if (chosen.manifestDigest) verifyDigest(layout.manifest, chosen.manifestDigest, `manifest of ${source.input}`)
      manifestBytes = layout.manifest
    }
    if (!manifestBytes) await fetchAll()
    const manifestDigest = sha256Digest(manifestBytes!)
    const parsed = parseManifestOrIndex(manifestBytes!, `manifest of ${source.input}`)
    if (parsed.kind !== 'manifest') {
      throw new VerificationError(`${source.input}: the chosen instance ${manifestDigest} is itself an index`, {code: 'E_NESTED_INDEX'})
    }
    const manifest: ImageManifest = parsed.manifest
    const configDigest = manifest.config.digest
    const flatRel = flatRootRel(configDigest)
    const flatAbs = join(root, flatRel)
    const flatExists = await pathExists(flatAbs)

    // Unchanged: the name already points at the flat root of this config digest — ours,
    // or DUCC's (relative link, or the absolute form of repositories from before 2019).
    // Like DUCC, change detection compares the config digest only: such an image costs
    // no change (no CVMFS transaction), even if its manifest was re-encoded.
    const record = await readImageRecord(join(root, metadataDirRel(source.name)))
    const linkTarget = await readlink(join(root, source.name)).catch(() => undefined)
    const linked = linkTarget === relativeLinkTarget(source.name, configDigest) || (linkTarget?.startsWith('/') && linkTarget.endsWith(`/${flatRel}`))
    if (flatExists && linked) {
      logger.info(`${source.input}: unchanged (${configDigest.slice(0, 19)})`)
      return result('unchanged', (record?.configDigest === configDigest ? record.size : undefined) ?? (await readFlatRecord(root, configDigest))?.size ?? 0, [])
    }
    if (options.dryRun) return result(flatExists ? 'linked' : 'published', record?.size ?? 0, [])

    // Config bytes: kept in the repository, or from the fetched layout, or asked for alone.
    if (flatExists) {
      configBytes = await readFile(join(root, blobRel(configDigest))).catch(() => undefined)
      configBytes ??= await inspectConfigRaw(chosen.copyRef, options.registry, chosen.skopeoPlatform, logger)
    } else if (!fetched && manifestBytes && backend.downloadDuringChange) {
      // Unpack each layer as soon as skopeo has it: download and unpacking overlap.
      // (Only where no transaction is held open meanwhile: plain directories.)
      configBytes = await inspectConfigRaw(chosen.copyRef, options.registry, chosen.skopeoPlatform, logger)
      download = fetchAll()
      download.catch(() => {})
    } else {
      if (!fetched) await fetchAll()
      configBytes = await readFile(join(temp.path, 'image', digestHex(configDigest))).catch(() => undefined)
      if (!configBytes) throw new VerificationError(`${source.input}: config blob ${configDigest} is missing`, {code: 'E_MISSING_BLOB'})
    }
    verifyConfigBlob(configBytes, manifest, source.input)
    const config: ImageConfig = parseConfig(configBytes, `config of ${source.input}`)
    verifyDiffIds(manifest, config, source.input)
    checkPlatform(config, options.platform, options.explicitPlatform, source.input, logger)

    const paths = [flatRel, source.name, metadataDirRel(source.name)]
    // A root unpacked before (under another name) has its size on record.
    let size = (await readFlatRecord(root, configDigest))?.size ?? (record?.configDigest === configDigest ? (record.size ?? 0) : 0)
    let added: string[] = []
    await backend.change(paths, async (writeRoot) => {
      if (flatExists) {
        // A root made elsewhere (DUCC's lacks /etc/mtab, /run/.containerenv, …, and
        // apptainer's labels.json): what is missing goes in with the link, DUCC's own
        // .singularity.d files stay. Nothing for a root this version made.
        added = await addRuntimeFiles(join(writeRoot, flatRel), config.config)
        if (added.length > 0) logger.info(`${source.input}: added to ${flatRel}: ${added.join(', ')}`)
      } else {
        const stats = await buildFlatRoot(writeRoot, temp.path, manifest, config, source.input, {
          ...options,
          reuseBaseRoots: options.reuseBaseRoots ?? backend.hardlinkClones === true,
          download,
        })
        size = stats.size
        added = stats.added
      }
      const imageRecord: ImageRecord = {
        reference: formatReference(source.reference),
        name: source.name,
        manifestDigest,
        configDigest,
        mediaType: manifest.mediaType,
        platform: formatPlatform({os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant}),
        size,
        created: config.created,
        published: new Date().toISOString(),
        source: source.input,
        indexDigest: chosen.indexDigest,
      }
      await writeImageMetadata(writeRoot, {
        record: imageRecord,
        manifestBytes: manifestBytes!,
        configBytes: configBytes!,
        indexBytes: chosen.indexBytes,
        duccManifest: toDuccManifest(manifest),
      })
      await updatePodmanStore(writeRoot, {add: [imageRecord]}, logger)
    })
    const status: PublishStatus = flatExists ? 'linked' : 'published'
    logger.info(`${source.input}: ${status} as ${source.name} -> ${flatRel} (${formatBytes(size)}, ${((Date.now() - started) / 1000).toFixed(1)} s)`)
    return result(status, size, added)

    function result(status: PublishStatus, size: number, added: string[]): PublishResult {
      return {
        source: source.input,
        reference: formatReference(source.reference),
        name: source.name,
        status,
        manifestDigest,
        configDigest,
        platform: formatPlatform(options.platform),
        path: flatAbs,
        size,
        layers: manifest.layers.length,
        added,
        seconds: (Date.now() - started) / 1000,
      }
    }
  } finally {
    if (download) {
      stopDownload.abort()
      await download.catch(() => {})
    }
    await temp.cleanup()
  }
}

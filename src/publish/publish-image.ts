/**
 * Publish one image: fetch (skopeo → an OCI layout in a temp dir), verify
 * (schemas, digests, sizes, DiffIDs, platform), merge the layers into a staging
 * directory inside the repository, rename it to `.flat/<hh>/<confighex>`, then
 * write metadata, the podman store and, last, the public link (parts.ts: one change, or
 * one each through a gateway). An image whose flat root already exists costs no layer
 * download; one whose name already points at the root of its config digest costs no
 * change of the repository at all.
 */
import {join} from 'node:path'

import type {RepositoryBackend} from '../backends/backend.js'
import {preloadExeca} from '../exec.js'
import type {ImageSource} from '../fetch/source.js'
import {inspectConfigRaw, type RegistryOptions, type SkippedBlob} from '../fetch/skopeo.js'
import {readlink} from '../fs-promises.js'
import {pathExists} from '../layout/exists.js'
import {otherPlatformDirs, removeOtherLinks, removeOtherMetadata} from '../layout/multiarch.js'
import {flatRootRel, METADATA_DIR, metadataDirRel, MULTIARCH_DIR, relativeLinkTarget} from '../layout/paths.js'
import {readImageRecord} from '../layout/list.js'
import {readFlatRecord, writeImageLink, type ImageMetadata} from '../layout/write.js'
import {formatBytes, type Logger} from '../log.js'
import {sha256Digest} from '../oci/digest.js'
import type {ImageConfig, ImageManifest} from '../oci/documents.js'
import {toDuccManifest} from '../oci/ducc-manifest.js'
import {choosePlatform, choosePlatforms, formatPlatform, type PlatformChoice, type PlatformRequest} from '../oci/platform.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {updatePodmanStore} from '../podman-store/store.js'
import {formatReference} from '../reference/reference.js'
import {anyBaseRoot} from './base-root.js'
import {blobsHeld, buildFlatRoot, planRoot} from './build-root.js'
import {flatRootPart, recordFlatRoot, writeImageFilesUnlessThere, type FlatRootOutcome} from './image-parts.js'
import {fetchedConfig, fetchInstance, imageRecord, inspectTop, instanceManifest, keptConfig, leadsTo, pinInstance, publishTempDir, rootChoices, verifiedConfig, type Chosen, type Top} from './instance.js'
import {applyParts, type ChangePart} from './parts.js'
import {PublishProgress} from './progress.js'
import {publishPlatforms} from './publish-platforms.js'
import {checkPlatform, checkPlatformListed} from './verify.js'

/**
 * How to publish. With `platforms` (`--platform all`, or several) every such platform of an
 * index is published (publish-platforms.ts); an image that is no index is published as it is.
 */
export interface PublishOptions extends PlatformChoice {
  registry: RegistryOptions
  logger: Logger
  /** Where downloads go (default: the system temp dir). */
  tmpDir?: string
  signal?: AbortSignal
  /** Start a merge from a published root with the same first layers (hardlinks: plain directories only). */
  reuseBaseRoots?: boolean
  /**
   * Mark the big subtrees of each new flat root as nested catalogs (layout/nested-catalogs.ts).
   * Default: where the backend has catalogs (CVMFS).
   */
  nestedCatalogs?: boolean
  /** Decide the status only (`sync --dry-run`): no layer is fetched, nothing is written. */
  dryRun?: boolean
  /** The top-level manifest, if its inspection was started already ({@link startInspect}). */
  inspected?: Inspection
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
  /**
   * A multi-platform name: each platform published (the fields above describe the one
   * the variant link's default leads to, or the first).
   */
  platforms?: PlatformResult[]
}

/** One platform of a multi-platform publish. */
export interface PlatformResult {
  /** Its `.multiarch` directory, e.g. `arm64:v8`. */
  arch: string
  platform: string
  status: PublishStatus
  manifestDigest: string
  configDigest: string
  path: string
  size: number
  added: string[]
}

/** Top-level manifest → the instance to publish (a multi-platform request picks several elsewhere). */
async function choose(source: ImageSource, top: Top, options: PublishOptions): Promise<Chosen> {
  if (top.parsed.kind === 'manifest') {
    return {manifestBytes: top.bytes, manifestDigest: top.digest, copyRef: source.skopeoRef, skopeoPlatform: options.platform}
  }
  const descriptor = options.platforms
    ? choosePlatforms(top.parsed.index, options.platforms, source.input)[0]!
    : choosePlatform(top.parsed.index, options.platform, source.input)
  return pinInstance(source, top, descriptor, options.platform, options.registry, options.logger)
}

/** The top-level manifest of a source being inspected, from {@link startInspect}. */
export interface Inspection {
  source: ImageSource
  top: Promise<Top>
  /**
   * With `alsoConfig`: the config of the image the reference names for the platform,
   * asked for beside the manifest (undefined if that request failed). Used only if its
   * digest is the chosen manifest's config digest ({@link configOf}).
   */
  config?: Promise<Buffer | undefined>
  /** Stops the config's request once it is not needed. */
  stop: AbortController
  /** When the request started (ms since the epoch). */
  started: number
}

/**
 * How old an inspection started before the repository was opened may be when its image's
 * turn comes: a publish that waited longer for the lock (another publisher's minutes)
 * asks the registry again, so that it publishes what the tag names now.
 */
const INSPECTED_FRESH_MS = 10_000

/**
 * Start inspecting the top-level manifest of `source`. publish starts it for its first
 * image before taking the repository lock, so the registry's round trip overlaps the
 * lock and the repository's checks instead of following them.
 */
export function startInspect(
  source: ImageSource,
  options: Pick<PublishOptions, 'platform' | 'platforms' | 'registry' | 'logger' | 'signal'> & {alsoConfig?: boolean},
): Inspection {
  options.logger.info(`${source.input}: fetching manifest (${options.platforms ? describeRequest(options.platforms) : formatPlatform(options.platform)})`)
  const top = inspectTop(source, options.registry, options.logger, options.signal)
  // Its failure is reported when its image's turn comes (or never, if the repository cannot be opened).
  top.then((got) => options.logger.debug(`${source.input}: manifest ${got.digest} (${got.bytes.length} bytes)`), () => {})
  const stop = new AbortController()
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const config = options.alsoConfig ? inspectConfigRaw(source.skopeoRef, options.registry, options.platform, options.logger, signal).catch(() => undefined) : undefined
  return {source, top, config, stop, started: Date.now()}
}

/**
 * Whether to ask for the config beside the manifest ({@link startInspect}): where the
 * config is asked for alone (a directory repository; a CVMFS publish reads it from its
 * download), for one platform of a registry image, and only for a name not published
 * yet. Such a publish needs the config next (its DiffIDs find a base root), and a
 * name that is not there cannot be unchanged, the one outcome that would not use the
 * config; a name that is there is inspected as before, so a sync of unchanged images
 * asks the registry for nothing more.
 */
export async function configAlongside(root: string, source: ImageSource, options: Pick<PublishOptions, 'platforms' | 'dryRun'> & {directory: boolean}): Promise<boolean> {
  if (!options.directory || options.dryRun || options.platforms || source.transport !== 'docker') return false
  return !(await pathExists(join(root, source.name)))
}

/** The config of `manifest`, if the one asked for beside it ({@link startInspect}) is that one. */
export async function configOf(inspection: Inspection | undefined, manifest: ImageManifest): Promise<Buffer | undefined> {
  const bytes = await inspection?.config
  return bytes && sha256Digest(bytes) === manifest.config.digest ? bytes : undefined
}

export async function publishImage(backend: RepositoryBackend, source: ImageSource, options: PublishOptions): Promise<PublishResult> {
  const started = Date.now()
  const root = backend.root
  const fresh = options.inspected?.source === source && Date.now() - options.inspected.started <= INSPECTED_FRESH_MS
  const alsoConfig = !fresh && (await configAlongside(root, source, {...options, directory: backend.downloadDuringChange === true}))
  const inspection = fresh ? options.inspected! : startInspect(source, {...options, alsoConfig})
  try {
    return await publishInspected(backend, source, inspection, options, started)
  } finally {
    // The config asked for beside the manifest, if still on its way, is not needed now.
    inspection.stop.abort()
  }
}

async function publishInspected(backend: RepositoryBackend, source: ImageSource, inspection: Inspection, options: PublishOptions, started: number): Promise<PublishResult> {
  const {logger} = options
  const root = backend.root
  // A publish that may copy loads execa while the manifest is on its way.
  if (!options.dryRun) preloadExeca()
  const top = await inspection.top
  if (options.platforms && top.parsed.kind === 'index') {
    const descriptors = choosePlatforms(top.parsed.index, options.platforms, source.input)
    if (descriptors.length > 1) return publishPlatforms(backend, source, top, descriptors, options)
  }
  const chosen = await choose(source, top, options)
  const temp = await publishTempDir(options.tmpDir, logger)
  // On a terminal: the live line of the download and the merge.
  const progress = new PublishProgress(logger, source.input)
  // A download running while layers are unpacked (see below), stopped if anything fails.
  let download: Promise<void> | undefined
  const stopDownload = new AbortController()
  try {
    let manifestBytes = chosen.manifestBytes
    let configBytes: Buffer | undefined
    let fetched = false
    let overlap = false
    let skip: readonly SkippedBlob[] = []
    const fetchAll = async (skipping: readonly SkippedBlob[] = []) => {
      const signal = options.signal ? AbortSignal.any([options.signal, stopDownload.signal]) : stopDownload.signal
      skip = skipping
      manifestBytes = await fetchInstance(source, chosen, temp.path, {registry: options.registry, logger, signal, skip, progress})
      fetched = true
    }
    const startDownload = (skipping: readonly SkippedBlob[]) => {
      download = fetchAll(skipping)
      download.catch(() => {})
    }
    const {reuseBaseRoots, nestedCatalogs} = rootChoices(backend, options)
    if (!manifestBytes) await fetchAll()
    const manifestDigest = sha256Digest(manifestBytes!)
    const manifest: ImageManifest = instanceManifest(manifestBytes!, source.input)
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
    if (flatExists && leadsTo(linkTarget, relativeLinkTarget(source.name, configDigest), flatRel)) {
      logger.info(`${source.input}: unchanged (${configDigest.slice(0, 19)})`)
      return result('unchanged', (record?.configDigest === configDigest ? record.size : undefined) ?? (await readFlatRecord(root, configDigest))?.size ?? 0, [])
    }
    if (options.dryRun) return result(flatExists ? 'linked' : 'published', record?.size ?? 0, [])

    // Config bytes: kept in the repository, or from the fetched layout, or asked for alone.
    if (flatExists) {
      configBytes = await keptConfig(root, configDigest, chosen, options.registry, logger)
    } else if (!fetched && manifestBytes && backend.downloadDuringChange) {
      // Unpack each layer as soon as skopeo has it: download and unpacking overlap.
      // (Only where no transaction is held open meanwhile: plain directories.)
      overlap = true
      // Where no published root can be a base, nothing is left out of the download: it
      // starts at once, beside the config's own request.
      if (!(reuseBaseRoots && (await anyBaseRoot(root)))) startDownload([])
      configBytes = (await configOf(inspection, manifest)) ?? (await inspectConfigRaw(chosen.copyRef, options.registry, chosen.skopeoPlatform, logger))
    } else {
      if (!fetched) await fetchAll()
      configBytes = await fetchedConfig(temp.path, configDigest, source.input)
    }
    const config: ImageConfig = verifiedConfig(configBytes, manifest, source.input)
    if (options.platforms) checkPlatformListed(config, options.platforms, source.input)
    else checkPlatform(config, options.platform, options.explicitPlatform, source.input, logger)
    const plan = flatExists ? undefined : await planRoot(root, manifest, config, source.input, {logger, reuseBaseRoots})
    // From a registry, fetch only the layers the merge needs (not those a published root holds).
    if (overlap && !download) startDownload(plan && source.transport === 'docker' ? blobsHeld(plan) : [])

    // A root unpacked before (under another name) has its size on record.
    let size = (await readFlatRecord(root, configDigest))?.size ?? (record?.configDigest === configDigest ? (record.size ?? 0) : 0)
    const flat: FlatRootOutcome = {built: false, added: []}
    let wrote = false
    const meta = (size: number): ImageMetadata => ({
      record: imageRecord(source, {manifestDigest, manifest, config, size, indexDigest: chosen.indexDigest}),
      manifestBytes: manifestBytes!,
      configBytes: configBytes!,
      indexBytes: chosen.indexBytes,
      duccManifest: toDuccManifest(manifest),
    })
    // The flat root first, then the metadata, the podman store and, last, the link readers
    // follow (parts.ts: one change, or through a gateway one short change each).
    const parts: ChangePart[] = [
      await flatRootPart(
        root,
        {
          flatRel,
          config,
          existed: flatExists,
          label: source.input,
          logger,
          build: (writeRoot) =>
            buildFlatRoot(writeRoot, temp.path, manifest, config, source.input, {...options, reuseBaseRoots, nestedCatalogs, download, plan, progress}),
        },
        flat,
      ),
      {
        what: 'metadata',
        paths: [METADATA_DIR],
        async write(writeRoot) {
          size = await recordFlatRoot(writeRoot, configDigest, flat, size)
          if (await writeImageFilesUnlessThere(writeRoot, meta(size))) wrote = true
          // The name may have been published for several platforms: their metadata goes.
          const removed = await removeOtherMetadata(writeRoot, source.name)
          if (removed.length > 0) logger.info(`${source.input}: now a single-platform name: removed ${removed.join(', ')}`)
        },
      },
      {what: 'podman store', paths: [PODMAN_STORE_DIR], write: (writeRoot) => updatePodmanStore(writeRoot, {add: [meta(size).record]}, logger)},
      {
        what: 'link',
        paths: [source.name],
        async write(writeRoot) {
          if (await writeImageLink(writeRoot, {name: source.name, configDigest})) wrote = true
        },
      },
    ]
    // …and its .multiarch links.
    if ((await otherPlatformDirs(root, source.name)).length > 0) {
      parts.push({what: '.multiarch links', paths: [MULTIARCH_DIR], write: async (writeRoot) => void (await removeOtherLinks(writeRoot, source.name))})
    }
    await applyParts(backend, parts)
    const added = flat.added
    const status: PublishStatus = flat.built ? 'published' : wrote ? 'linked' : 'unchanged'
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
        platform: formatPlatform(chosen.skopeoPlatform),
        path: flatAbs,
        size,
        layers: manifest.layers.length,
        added,
        seconds: (Date.now() - started) / 1000,
      }
    }
  } finally {
    progress.end()
    if (download) {
      stopDownload.abort()
      await download.catch(() => {})
    }
    await temp.cleanup()
  }
}

/** `all`, or the platforms listed, for messages. */
export function describeRequest(request: PlatformRequest): string {
  return request.all ? 'all platforms' : request.platforms.map(formatPlatform).join(', ')
}

/**
 * Publish several platforms of an index under one name, in DUCC's multi-arch layout
 * (docs/layout.md, "Multi-platform names"): each platform's flat root,
 * `.multiarch/<arch>/<name>` links with their metadata in `.metadata/.multiarch/<arch>/`,
 * alias links for the names CVMFS clients give CVMFS_ARCH, and the public name as the
 * variant link `…/.multiarch/$(CVMFS_ARCH:-<this host's arch>)/<name>` — in one
 * repository change (through a gateway, one short change per part: parts.ts), the public
 * link last. Change detection compares each platform's
 * config digest with the root its `.multiarch` link leads to, as DUCC does.
 */
import {join} from 'node:path'

import type {RepositoryBackend} from '../backends/backend.js'
import type {ImageSource} from '../fetch/source.js'
import {inspectConfigRaw, type SkippedBlob} from '../fetch/skopeo.js'
import {readlink} from '../fs-promises.js'
import {ARCH_VARIABLE} from '../layout/paths.js'
import {pathExists} from '../layout/exists.js'
import {aliasesInStep, platformDirsOf, removeOtherLinks, removeOtherMetadata} from '../layout/multiarch.js'
import {DUCC_MANIFEST, flatRootRel, METADATA_DIR, metadataDirRel, MULTIARCH_DIR, multiarchLinkRel, multiarchLinkTarget, multiarchMetadataDirRel, variantLinkTarget} from '../layout/paths.js'
import {readFlatRecord, replaceSymlink, writeImageLink} from '../layout/write.js'
import {formatBytes} from '../log.js'
import {sha256Digest} from '../oci/digest.js'
import type {Descriptor, ImageConfig, ImageManifest} from '../oci/documents.js'
import {toDuccManifest} from '../oci/ducc-manifest.js'
import {formatPlatform, hostPlatform, multiarchDir, type PlatformSpec} from '../oci/platform.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {updatePodmanStore} from '../podman-store/store.js'
import {formatReference} from '../reference/reference.js'
import {blobsHeld, buildFlatRoot, planRoot, type RootPlan} from './build-root.js'
import {flatRootPart, recordFlatRoot, writeImageFilesUnlessThere, type FlatRootOutcome} from './image-parts.js'
import {fetchedConfig, fetchInstance, imageRecord, instanceManifest, keptConfig, leadsTo, pinInstance, publishTempDir, rootChoices, verifiedConfig, type Chosen, type Top} from './instance.js'
import {applyParts, type ChangePart} from './parts.js'
import type {PlatformResult, PublishOptions, PublishResult, PublishStatus} from './publish-image.js'
import {PublishProgress} from './progress.js'
import {checkPlatform} from './verify.js'

/** One platform on its way into the repository. */
interface Item {
  arch: string
  platform: PlatformSpec
  label: string
  chosen: Chosen
  /** Its temp dir: the OCI layout goes to `<dir>/image`. */
  dir: string
  fetched: boolean
  manifestBytes: Buffer
  manifestDigest: string
  manifest: ImageManifest
  configDigest: string
  flatRel: string
  flatExists: boolean
  /** Whether `.multiarch/<arch>/<name>` already leads to its root. */
  linked: boolean
  configBytes?: Buffer
  config?: ImageConfig
  size: number
  added: string[]
  /** How its root is built, and the blobs not fetched for it. */
  plan?: RootPlan
  skip?: SkippedBlob[]
  /** Its live line on a terminal. */
  progress: PublishProgress
  /** What its flat-root part found and did. */
  flat: FlatRootOutcome
}

/**
 * The architecture the variant link falls back to where CVMFS_ARCH is unset: this
 * host's, as DUCC takes its own (`runtime.GOARCH`).
 */
export function variantDefaultArch(): string {
  return hostPlatform().architecture
}

export async function publishPlatforms(backend: RepositoryBackend, source: ImageSource, top: Top, descriptors: Descriptor[], options: PublishOptions): Promise<PublishResult> {
  const started = Date.now()
  const {logger} = options
  const root = backend.root
  const name = source.name
  const defaultArch = variantDefaultArch()
  const temp = await publishTempDir(options.tmpDir, logger)
  try {
    const items: Item[] = []
    for (const [i, descriptor] of descriptors.entries()) items.push(await prepare(descriptor, join(temp.path, String(i))))

    const publicTarget = await readlink(join(root, name)).catch(() => undefined)
    if (items.every((item) => item.linked) && isVariantLink(publicTarget, name) && (await onlyThese(items))) {
      logger.info(`${source.input}: unchanged (${items.map((item) => `${item.arch} ${item.configDigest.slice(0, 19)}`).join(', ')})`)
      return result('unchanged')
    }
    if (options.dryRun) return result(items.some((item) => !item.flatExists) ? 'published' : 'linked')

    const {reuseBaseRoots, nestedCatalogs} = rootChoices(backend, options)
    for (const item of items) {
      if (item.flatExists) {
        item.configBytes = await keptConfig(root, item.configDigest, item.chosen, options.registry, logger)
      } else if (!item.fetched && reuseBaseRoots && source.transport === 'docker') {
        // From a registry onto a published base: the config first, to fetch only the layers the merge needs.
        item.configBytes = await inspectConfigRaw(item.chosen.copyRef, options.registry, item.chosen.skopeoPlatform, logger)
      } else {
        if (!item.fetched) await fetchInstance(source, item.chosen, item.dir, {registry: options.registry, logger, signal: options.signal, progress: item.progress})
        item.configBytes = await fetchedConfig(item.dir, item.configDigest, item.label)
        item.fetched = true
      }
      item.config = verifiedConfig(item.configBytes, item.manifest, item.label)
      // The index said which platform this is; its config must agree.
      checkPlatform(item.config, item.platform, true, item.label, logger)
      if (item.flatExists) continue
      item.plan = await planRoot(root, item.manifest, item.config, item.label, {logger, reuseBaseRoots})
      if (!item.fetched) {
        item.skip = blobsHeld(item.plan)
        await fetchInstance(source, item.chosen, item.dir, {registry: options.registry, logger, signal: options.signal, skip: item.skip, progress: item.progress})
      }
    }

    const keep = items.map((item) => item.arch)
    const records = () => items.map((item) => imageRecord(source, {manifestDigest: item.manifestDigest, manifest: item.manifest, config: item.config!, size: item.size, indexDigest: top.digest, arch: item.arch}))
    let wrote = false
    // Each platform's flat root, the metadata, the podman store, the .multiarch links and,
    // last, the variant link readers follow (parts.ts).
    const parts: ChangePart[] = []
    for (const item of items) {
      const plan = {flatRel: item.flatRel, config: item.config!, existed: item.flatExists, label: item.label, logger}
      const build = async (writeRoot: string) => {
        const stats = await buildFlatRoot(writeRoot, item.dir, item.manifest, item.config!, item.label, {
          ...options,
          reuseBaseRoots,
          nestedCatalogs,
          plan: item.plan,
          progress: item.progress,
        })
        item.progress.end()
        return stats
      }
      parts.push(await flatRootPart(root, {...plan, build}, item.flat))
    }
    parts.push(
      {
        what: 'metadata',
        paths: [METADATA_DIR],
        async write(writeRoot) {
          for (const item of items) item.size = await recordFlatRoot(writeRoot, item.configDigest, item.flat, item.size)
          for (const [i, record] of records().entries()) {
            const item = items[i]!
            const meta = {record, manifestBytes: item.manifestBytes, configBytes: item.configBytes!, indexBytes: top.bytes, duccManifest: toDuccManifest(item.manifest)}
            if (await writeImageFilesUnlessThere(writeRoot, meta)) wrote = true
          }
          const removed = await removeOtherMetadata(writeRoot, name, keep)
          if (removed.length > 0) logger.info(`${source.input}: removed what its earlier form left: ${removed.join(', ')}`)
        },
      },
      {what: 'podman store', paths: [PODMAN_STORE_DIR], write: (writeRoot) => updatePodmanStore(writeRoot, {add: records(), defaultArch}, logger)},
      {
        what: '.multiarch links',
        paths: [MULTIARCH_DIR],
        async write(writeRoot) {
          for (const record of records()) if (await writeImageLink(writeRoot, record)) wrote = true
          const removed = await removeOtherLinks(writeRoot, name, keep)
          if (removed.length > 0) logger.info(`${source.input}: removed what its earlier form left: ${removed.join(', ')}`)
        },
      },
      {
        what: 'link',
        paths: [name],
        async write(writeRoot) {
          const target = variantLinkTarget(name, defaultArch)
          if ((await readlink(join(writeRoot, name)).catch(() => undefined)) === target) return
          await replaceSymlink(join(writeRoot, name), target)
          wrote = true
        },
      },
    )
    await applyParts(backend, parts)
    for (const item of items) item.added = item.flat.added
    const status: PublishStatus = items.some((item) => item.flat.built) ? 'published' : wrote ? 'linked' : 'unchanged'
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    logger.info(`${source.input}: ${status} as ${name} -> ${MULTIARCH_DIR}/$(${ARCH_VARIABLE}:-${defaultArch})/: ${items.map((item) => `${item.arch} ${item.flatRel} (${formatBytes(item.size)})`).join(', ')} (${seconds} s)`)
    return result(status)

    /** What the result shows: the platform the default leads to, else the first. */
    function result(status: PublishStatus): PublishResult {
      const platforms: PlatformResult[] = items.map((item) => ({
        arch: item.arch,
        platform: formatPlatform(item.platform),
        status: item.flat.built || !item.flatExists ? 'published' : item.linked ? 'unchanged' : 'linked',
        manifestDigest: item.manifestDigest,
        configDigest: item.configDigest,
        path: join(root, item.flatRel),
        size: item.size,
        added: item.added,
      }))
      const main = items.find((item) => item.arch === defaultArch || item.platform.architecture === defaultArch) ?? items[0]!
      return {
        source: source.input,
        reference: formatReference(source.reference),
        name,
        status,
        manifestDigest: main.manifestDigest,
        configDigest: main.configDigest,
        platform: formatPlatform(main.platform),
        path: join(root, main.flatRel),
        size: main.size,
        layers: main.manifest.layers.length,
        added: main.added,
        seconds: (Date.now() - started) / 1000,
        platforms,
      }
    }
  } finally {
    logger.clearProgress()
    await temp.cleanup()
  }

  /** Pin one entry, read its manifest (copying the image when only a copy tells it), and see what is there. */
  async function prepare(descriptor: Descriptor, dir: string): Promise<Item> {
    const platform = descriptor.platform!
    const spec: PlatformSpec = {os: platform.os, architecture: platform.architecture, ...(platform.variant ? {variant: platform.variant} : {})}
    const label = `${source.input} (${formatPlatform(spec)})`
    const chosen = await pinInstance(source, top, descriptor, spec, options.registry, logger)
    let manifestBytes = chosen.manifestBytes
    const fetched = manifestBytes === undefined
    manifestBytes ??= await fetchInstance(source, chosen, dir, {registry: options.registry, logger, signal: options.signal})
    const manifest = instanceManifest(manifestBytes, label)
    const configDigest = manifest.config.digest
    const arch = multiarchDir(platform)
    const flatRel = flatRootRel(configDigest)
    const flatExists = await pathExists(join(root, flatRel))
    const target = await readlink(join(root, multiarchLinkRel(arch, name))).catch(() => undefined)
    const linked = flatExists && leadsTo(target, multiarchLinkTarget(arch, name, configDigest), flatRel) && (await pathExists(join(root, multiarchMetadataDirRel(arch, name), DUCC_MANIFEST)))
    const size = flatExists ? ((await readFlatRecord(root, configDigest))?.size ?? 0) : 0
    const progress = new PublishProgress(logger, label)
    return {arch, platform: spec, label, chosen, dir, fetched, manifestBytes, manifestDigest: sha256Digest(manifestBytes), manifest, configDigest, flatRel, flatExists, linked, size, added: [], progress, flat: {built: false, added: []}}
  }

  /** No other platform, no single-platform metadata and no stale alias is left beside these. */
  async function onlyThese(items: Item[]): Promise<boolean> {
    const dirs = await platformDirsOf(root, name)
    if (dirs.length !== items.length || !dirs.every((dir) => items.some((item) => item.arch === dir))) return false
    if (await pathExists(join(root, metadataDirRel(name)))) return false
    return aliasesInStep(join(root, MULTIARCH_DIR))
  }
}

/** Whether a link target is DUCC's variant link for `name` (whatever default its publisher chose). */
function isVariantLink(target: string | undefined, name: string): boolean {
  const fallback = target === undefined ? undefined : new RegExp(`\\$\\(${ARCH_VARIABLE}:-([^)/]+)\\)`).exec(target)?.[1]
  return fallback !== undefined && target === variantLinkTarget(name, fallback)
}

/**
 * Build one flat root: the merge of an image's layers in a staging directory inside
 * the repository, renamed into `.flat/<hh>/<config hex>` only when complete.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {VerificationError} from '../errors.js'
import type {SkippedBlob} from '../fetch/skopeo.js'
import {mkdir, rename, rm} from '../fs-promises.js'
import {addNestedCatalogs, writeRootMarker} from '../layout/nested-catalogs.js'
import {digestHex, flatRootRel, STAGING_DIR} from '../layout/paths.js'
import {addRuntimeFiles} from '../layout/singularity.js'
import {ensureCatalogMarkers, type FlatRecord} from '../layout/write.js'
import {formatBytes, someOf} from '../log.js'
import {chainIds} from '../oci/chain-id.js'
import type {Descriptor, ImageConfig, ImageManifest} from '../oci/documents.js'
import {isForeignLayer} from '../oci/media-types.js'
import {mergeLayers} from '../unpack/merge.js'
import {treeBytes} from '../unpack/tree-bytes.js'
import {filesBytes, findBaseRoot, type BaseRoot} from './base-root.js'
import {fetchedBlobPath} from './instance.js'
import type {PublishProgress} from './progress.js'
import type {PublishOptions} from './publish-image.js'

/** Resolve once skopeo has renamed a blob into place (it writes under a temporary name first). */
async function blobReady(path: string, download: Promise<void>): Promise<void> {
  let settled = false
  download.then(
    () => (settled = true),
    () => (settled = true),
  )
  while (!existsSync(path)) {
    if (settled) {
      await download // rethrows the download's error
      if (!existsSync(path)) throw new VerificationError(`the download did not produce ${path}`, {code: 'E_MISSING_BLOB'})
    }
    await new Promise((resolve) => setTimeout(resolve, 15))
  }
}

/**
 * Wait for all of `promises`, then throw the first failure in their order: none is left
 * running behind an error (the caller removes what they write once this returns).
 */
async function settleAll<T extends readonly unknown[]>(promises: {[K in keyof T]: Promise<T[K]>}): Promise<T> {
  const settled = await Promise.allSettled(promises)
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T
}

/** One layer to merge: its descriptor, its DiffID and where it sits in the manifest. */
export interface PlannedLayer {
  layer: Descriptor
  diffId: string
  index: number
}

/** How a flat root will be built: from which published root, with which layers. */
export interface RootPlan {
  /** Every layer of the image but foreign ones (not distributable, skipped as podman does). */
  layers: PlannedLayer[]
  /** `chains[i]` is the ChainID of `layers[0…i]`. */
  chains: string[]
  /** A published root holding the first layers, to start from (hardlink clones: plain directories only). */
  base?: BaseRoot
  /** The layers to apply (those above the base). */
  todo: PlannedLayer[]
}

/** Decide how to build the root of `manifest`: which layers, from which base root. */
export async function planRoot(root: string, manifest: ImageManifest, config: ImageConfig, what: string, options: Pick<PublishOptions, 'logger' | 'reuseBaseRoots'>): Promise<RootPlan> {
  const diffIds = config.rootfs.diff_ids
  const layers = manifest.layers
    .map((layer, i) => ({layer, diffId: diffIds[i]!, index: i}))
    .filter(({layer}) => {
      if (!isForeignLayer(layer.mediaType)) return true
      options.logger.warn(`${what}: skipping foreign layer ${layer.digest} (not distributable, as podman does)`)
      return false
    })
  const chains = chainIds(layers.map(({diffId}) => diffId))
  const base = options.reuseBaseRoots ? await findBaseRoot(root, chains) : undefined
  return {layers, chains, base, todo: base ? layers.slice(base.layers) : layers}
}

/**
 * The blobs a fetch need not bring: those of the layers the base root holds, but for
 * a blob that a layer still to apply has too.
 */
export function blobsHeld(plan: RootPlan): SkippedBlob[] {
  const needed = new Set(plan.todo.map(({layer}) => layer.digest))
  const held = new Map<string, SkippedBlob>()
  for (const {layer} of plan.layers.slice(0, plan.base?.layers ?? 0)) {
    if (!needed.has(layer.digest)) held.set(layer.digest, {digest: layer.digest, size: layer.size})
  }
  return [...held.values()]
}

/**
 * Merge the layers into staging (from a published base root where one holds the
 * first layers), finish the root (mount points, apptainer's files, catalog marker; with
 * `nestedCatalogs`, markers on its big subtrees too: layout/nested-catalogs.ts), and rename it into
 * place. Returns its record (size, ChainID, what was added), which the caller writes with
 * the metadata (`.metadata/.flat/…`: outside the flat root's own lease, publish/parts.ts).
 */
export async function buildFlatRoot(
  root: string,
  tempPath: string,
  manifest: ImageManifest,
  config: ImageConfig,
  what: string,
  options: PublishOptions & {
    download?: Promise<void>
    /** The plan made before fetching (else made here). */
    plan?: RootPlan
    /** The live line on a terminal. */
    progress?: PublishProgress
  },
): Promise<{size: number; added: string[]; record: FlatRecord}> {
  const {logger} = options
  const configDigest = manifest.config.digest
  const staging = join(root, STAGING_DIR, `${digestHex(configDigest)}.${process.pid}`)
  const {layers, chains, base, todo} = options.plan ?? (await planRoot(root, manifest, config, what, options))
  // The layer blobs: in the OCI layout the download fills, `<tempPath>/image`.
  const blobPath = fetchedBlobPath(tempPath)
  const total = todo.reduce((sum, {layer}) => sum + layer.size, 0)
  await mkdir(staging, {recursive: true})
  try {
    if (base) logger.info(`${what}: starting from ${flatRootRel(base.configDigest)}, which holds ${base.layers} of its ${layers.length} layer(s)`)
    logger.info(`${what}: unpacking ${todo.length} layer(s), ${formatBytes(total)}`)
    const stats = await mergeLayers({
      root: staging,
      workDir: join(tempPath),
      logger,
      base: base && {path: base.path, skip: base.skip, bytes: base.bytes},
      waitForBlob: options.download && ((path) => blobReady(path, options.download!)),
      layers: todo.map(({layer, diffId, index}) => ({
        blobPath: blobPath(layer.digest),
        expect: {digest: layer.digest, size: layer.size, diffId, label: `${index + 1}/${manifest.layers.length} (${layer.digest.slice(0, 19)})`},
      })),
      onProgress: (index, bytes) => options.progress?.merged(bytes, total, todo[index]!.index + 1, manifest.layers.length),
    })
    // The download's own checks (the manifest it wrote) decide before anything is renamed
    // into place (its failure first); what the root holds besides its layers is written
    // meanwhile.
    const [, added] = await settleAll([Promise.resolve(options.download), addRuntimeFiles(staging, config.config), writeRootMarker(staging), ensureCatalogMarkers(root)] as const)
    if (options.nestedCatalogs) {
      // Last, so that the cut counts every entry the root will hold.
      const nested = await addNestedCatalogs(staging)
      added.push(...nested.added)
      if (nested.cuts.length > 0) {
        logger.info(`${what}: ${nested.cuts.length} nested catalog(s) in the flat root (its own catalog keeps ${nested.rootWeight} entries): ${someOf(nested.cuts.map((c) => `${c.path} (${c.weight})`), 8)}`)
      }
    }
    const flat = join(root, flatRootRel(configDigest))
    await mkdir(join(flat, '..'), {recursive: true})
    await rename(staging, flat)
    // What the root holds (not what was written: upper layers overwrite lower files), as
    // the merge counted it, plus what was added; measured where it could not count exactly.
    const size = stats.treeBytes === undefined ? treeBytes(flat) : stats.treeBytes + (await filesBytes(flat, added))
    return {size, added, record: {configDigest, chainId: chains[chains.length - 1], added, size, files: stats.files, unpacked: new Date().toISOString()}}
  } finally {
    await rm(staging, {recursive: true, force: true})
  }
}

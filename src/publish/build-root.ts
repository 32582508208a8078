/**
 * Build one flat root: the merge of an image's layers in a staging directory inside
 * the repository, renamed into `.flat/<hh>/<config hex>` only when complete.
 */
import {existsSync} from 'node:fs'
import {mkdir, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {STAGING_DIR} from '../backends/directory.js'
import {VerificationError} from '../errors.js'
import {CATALOG_MARKER, digestHex, flatRootRel} from '../layout/paths.js'
import {addRuntimeFiles} from '../layout/singularity.js'
import {ensureCatalogMarkers, type FlatRecord} from '../layout/write.js'
import {formatBytes} from '../log.js'
import {chainIds} from '../oci/chain-id.js'
import type {ImageConfig, ImageManifest} from '../oci/documents.js'
import {isForeignLayer} from '../oci/media-types.js'
import {mergeLayers} from '../unpack/merge.js'
import {treeBytes} from '../unpack/tree-bytes.js'
import {findBaseRoot} from './base-root.js'
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
 * Merge the layers into staging (from a published base root where one holds the
 * first layers), finish the root (mount points, apptainer's files, catalog marker), and rename it into
 * place. Returns its record (size, ChainID, what was added), which the caller writes with
 * the metadata (`.metadata/.flat/…`: outside the flat root's own lease, publish/parts.ts).
 */
export async function buildFlatRoot(
  root: string,
  tempPath: string,
  manifest: ImageManifest,
  config: ImageConfig,
  what: string,
  options: PublishOptions & {download?: Promise<void>},
): Promise<{size: number; added: string[]; record: FlatRecord}> {
  const {logger} = options
  const configDigest = manifest.config.digest
  const staging = join(root, STAGING_DIR, `${digestHex(configDigest)}.${process.pid}`)
  const diffIds = config.rootfs.diff_ids
  const layers = manifest.layers
    .map((layer, i) => ({layer, diffId: diffIds[i]!, index: i}))
    .filter(({layer}) => {
      if (!isForeignLayer(layer.mediaType)) return true
      logger.warn(`${what}: skipping foreign layer ${layer.digest} (not distributable, as podman does)`)
      return false
    })
  const chains = chainIds(layers.map(({diffId}) => diffId))
  // Start from a published root holding our first layers (hardlink clone; plain directories only).
  const base = options.reuseBaseRoots ? await findBaseRoot(root, chains) : undefined
  const todo = base ? layers.slice(base.layers) : layers
  const total = todo.reduce((sum, {layer}) => sum + layer.size, 0)
  let done = 0
  await mkdir(staging, {recursive: true})
  try {
    if (base) logger.info(`${what}: starting from ${flatRootRel(base.configDigest)}, which holds ${base.layers} of its ${layers.length} layer(s)`)
    logger.info(`${what}: unpacking ${todo.length} layer(s), ${formatBytes(total)}`)
    const stats = await mergeLayers({
      root: staging,
      workDir: join(tempPath),
      logger,
      base: base && {path: base.path, skip: base.skip},
      waitForBlob: options.download && ((path) => blobReady(path, options.download!)),
      layers: todo.map(({layer, diffId, index}) => ({
        blobPath: join(tempPath, 'image', digestHex(layer.digest)),
        expect: {digest: layer.digest, size: layer.size, diffId, label: `${index + 1}/${manifest.layers.length} (${layer.digest.slice(0, 19)})`},
      })),
      onProgress: (index, bytes) => {
        done += bytes
        logger.progress(`${what}: layer ${todo[index]!.index + 1}/${manifest.layers.length}  ${formatBytes(done)} / ${formatBytes(total)}`)
      },
    })
    // The download's own checks (the manifest it wrote) decide before anything is renamed into place.
    await options.download
    const added = await addRuntimeFiles(staging, config.config)
    await writeFile(join(staging, CATALOG_MARKER), '')
    await ensureCatalogMarkers(root)
    const flat = join(root, flatRootRel(configDigest))
    await mkdir(join(flat, '..'), {recursive: true})
    await rename(staging, flat)
    // What the root holds (not what was written: upper layers overwrite lower files).
    const size = treeBytes(flat)
    return {size, added, record: {configDigest, chainId: chains[chains.length - 1], added, size, files: stats.files, unpacked: new Date().toISOString()}}
  } finally {
    await rm(staging, {recursive: true, force: true})
  }
}

/**
 * The parts of publishing one image instance (parts.ts), shared by the single-platform
 * publish (publish-image.ts) and the multi-platform one (publish-platforms.ts): its flat
 * root, then its metadata. Each part looks at the repository as its own change sees it
 * (through a gateway: the newest revision, under its lease), so that what another
 * publisher did meanwhile counts: a flat root it merged is not merged again, metadata it
 * wrote for the same image is not written again.
 */
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {readlink} from '../fs-promises.js'
import {pathExists} from '../layout/exists.js'
import {readImageRecord} from '../layout/list.js'
import {CATALOG_MARKER, DUCC_MANIFEST, FLAT_DIR, metadataDirRel, multiarchLinkRel, multiarchLinkTarget, multiarchMetadataDirRel, relativeLinkTarget} from '../layout/paths.js'
import {addRuntimeFiles} from '../layout/singularity.js'
import {readFlatRecord, writeFlatRecord, writeImageFiles, type FlatRecord, type ImageMetadata} from '../layout/write.js'
import type {Logger} from '../log.js'
import type {ImageConfig} from '../oci/documents.js'
import {treeBytes} from '../unpack/tree-bytes.js'
import type {ChangePart} from './parts.js'

/** What the flat-root part found and did. */
export interface FlatRootOutcome {
  /** This run merged it. */
  built: boolean
  /** Paths added to it (mount points, apptainer's files). */
  added: string[]
  /** Its record, when this run merged it (written with the metadata). */
  record?: FlatRecord
  /** Its size, when known from this part. */
  size?: number
}

export interface FlatRootPlan {
  flatRel: string
  config: ImageConfig
  /** Whether the flat root existed when the publish looked, before any change. */
  existed: boolean
  label: string
  logger: Logger
  /** Merge it below `writeRoot` (only called when it is missing there). */
  build(writeRoot: string): Promise<{size: number; added: string[]; record: FlatRecord}>
}

/**
 * The flat root of one instance: merged when missing; when there (made earlier, by DUCC,
 * or by another publisher meanwhile), what readers need and it lacks is added. Its lease
 * is the root's own path (`.flat/<hh>/<hex>`; `.flat/<hh>` while that does not exist),
 * with `.flat/.cvmfscatalog` when `.flat` has none yet (a fresh repository: that first
 * merge holds all of `.flat`, so that a failed one leaves nothing behind).
 */
export async function flatRootPart(root: string, plan: FlatRootPlan, outcome: FlatRootOutcome): Promise<ChangePart> {
  const marker = join(FLAT_DIR, CATALOG_MARKER)
  const paths = (await pathExists(join(root, marker))) ? [plan.flatRel] : [plan.flatRel, marker]
  return {
    what: `flat root ${plan.flatRel}`,
    paths,
    async write(writeRoot) {
      const flat = join(writeRoot, plan.flatRel)
      if (await pathExists(flat)) {
        outcome.added = await addRuntimeFiles(flat, plan.config.config)
        if (outcome.added.length > 0) plan.logger.info(`${plan.label}: added to ${plan.flatRel}: ${outcome.added.join(', ')}`)
        // Merged by another publisher since we looked: its size, for our record.
        if (!plan.existed) {
          plan.logger.info(`${plan.label}: ${plan.flatRel} was merged by another publisher meanwhile`)
          outcome.size = treeBytes(flat)
        }
        return
      }
      if (plan.existed) {
        throw new UserError(`${plan.label}: ${plan.flatRel} was deleted while publishing (by cvmfs-oci gc on another publisher?)`, {
          code: 'E_FLAT_ROOT_GONE',
          hint: 'Publish the image again: it is merged anew.',
        })
      }
      const stats = await plan.build(writeRoot)
      Object.assign(outcome, {built: true, added: stats.added, record: stats.record, size: stats.size})
    },
  }
}

/**
 * The size of a flat root for its image record: from what this run merged (and its record,
 * written now, below `.metadata`), else from the record on file, else `fallback`.
 */
export async function recordFlatRoot(writeRoot: string, configDigest: string, outcome: FlatRootOutcome, fallback: number): Promise<number> {
  if (outcome.record) {
    await writeFlatRecord(writeRoot, outcome.record)
    return outcome.record.size
  }
  return (await readFlatRecord(writeRoot, configDigest))?.size ?? outcome.size ?? fallback
}

/**
 * The metadata of one image (blobs, DUCC's manifest.json, our record), unless the name
 * already leads to this image with this metadata (another publisher published it
 * meanwhile). True when written.
 */
export async function writeImageFilesUnlessThere(writeRoot: string, meta: ImageMetadata): Promise<boolean> {
  const {name, arch, configDigest, manifestDigest} = meta.record
  const dir = join(writeRoot, arch === undefined ? metadataDirRel(name) : multiarchMetadataDirRel(arch, name))
  const [link, target] = arch === undefined ? [name, relativeLinkTarget(name, configDigest)] : [multiarchLinkRel(arch, name), multiarchLinkTarget(arch, name, configDigest)]
  const kept = await readImageRecord(dir)
  if (
    kept?.configDigest === configDigest &&
    kept.manifestDigest === manifestDigest &&
    (await pathExists(join(dir, DUCC_MANIFEST))) &&
    (await readlink(join(writeRoot, link)).catch(() => undefined)) === target
  ) {
    return false
  }
  await writeImageFiles(writeRoot, meta)
  return true
}

/**
 * `cvmfs-oci rm IMAGE…` as a function: remove the public links and metadata of images
 * (all of them in one repository change; through a gateway, one short change per area),
 * and their names from the podman store in the same change. Flat roots stay: running containers may use them, and another name may
 * point to the same one; `cvmfs-oci gc` deletes those no link points to any more.
 */
import {join} from 'node:path'

import type {RepositoryBackend} from '../backends/backend.js'
import {chooseTarget, describeTarget, openBackend, type TargetOptions} from '../backends/open.js'
import {NotFoundError} from '../errors.js'
import {pathExists} from '../layout/exists.js'
import {METADATA_DIR, metadataDirRel, MULTIARCH_DIR, multiarchLinkRel, multiarchMetadataDirRel} from '../layout/paths.js'
import {platformDirsOf, syncArchAliases} from '../layout/multiarch.js'
import {removeAndPrune} from '../layout/remove.js'
import type {Logger} from '../log.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {updatePodmanStore} from '../podman-store/store.js'
import {applyParts, type ChangePart} from '../publish/parts.js'
import {formatReference, layoutName, layoutRegistries, parseReference, type ImageReference} from '../reference/reference.js'

export interface RmOptions extends TargetOptions {
  images: string[]
  /** Like podman rmi --ignore: an image that is not published is not an error. */
  ignore?: boolean
  lockTimeoutMs: number
  logger: Logger
}

export interface RemovedImage {
  image: string
  /** The public link name removed. */
  name: string
  /** Everything removed for it, relative to the repository root. */
  paths: string[]
}

export interface RmResult {
  repository: string
  removed: RemovedImage[]
  missing: string[]
  /** Set when an image was not published (and --ignore was not given). */
  failure?: NotFoundError
}

export async function rmCommand(options: RmOptions): Promise<RmResult> {
  const {logger} = options
  // Every reference is checked before the repository is touched.
  const references = options.images.map((image) => ({image, reference: parseReference(image)}))
  const target = chooseTarget(options)
  let result: RmResult = {repository: describeTarget(target), ...(await lookUp(target.root, references))}
  // Nothing to remove: that is the answer, without the lock. Such an rm reads as done
  // before any change in progress, and need not wait behind a publisher for minutes.
  // (An existing root only: a missing one, or an unknown repository, fails as before.)
  if (result.removed.length > 0 || !(await pathExists(target.root))) {
    const backend = await openBackend(target, {logger, lockTimeoutMs: options.lockTimeoutMs})
    try {
      // Looked up again under the lock: another process may have changed it meanwhile.
      result = {repository: result.repository, ...(await lookUp(backend.root, references))}
      await removeFound(backend, result, logger)
    } finally {
      await backend.close()
    }
  }
  if (result.missing.length > 0) {
    const message = `not published in ${result.repository}: ${result.missing.join(', ')}`
    if (options.ignore) logger.info(message)
    else result.failure = new NotFoundError(message, {code: 'E_NOT_PUBLISHED', hint: '`cvmfs-oci list` shows what is published; --ignore skips images that are not.'})
  }
  return result
}

/** What of `references` is published under `root`, and which are not. */
async function lookUp(root: string, references: {image: string; reference: ImageReference}[]): Promise<{removed: RemovedImage[]; missing: string[]}> {
  const removed: RemovedImage[] = []
  const missing: string[] = []
  for (const {image, reference} of references) {
    const found = await publishedPaths(root, layoutRegistries(reference).map((dir) => layoutName(reference, dir)))
    if (found.length === 0) missing.push(image)
    for (const entry of found) removed.push({image: formatReference(reference), ...entry})
  }
  return {removed, missing}
}

/** Remove what {@link lookUp} found, in one change (in parts). */
async function removeFound(backend: RepositoryBackend, result: RmResult, logger: Logger): Promise<void> {
  if (result.removed.length > 0) {
    const paths = result.removed.flatMap((r) => r.paths)
    const store = await pathExists(join(backend.root, PODMAN_STORE_DIR))
    await applyParts(backend, removalParts(paths, store ? result.removed.map((r) => r.name) : undefined, logger))
    for (const removed of result.removed) logger.info(`${removed.image}: removed ${removed.name} (its flat root stays until \`cvmfs-oci gc\`)`)
  }
}

/**
 * Removing published paths, in parts (publish/parts.ts): the public links first, one part
 * per top directory (removing a link prunes the directories it leaves empty, up to its
 * registry's), then the `.multiarch` links (the alias links follow), the names in the
 * podman store (`storeNames`, when there is a store), and last the metadata.
 */
function removalParts(paths: string[], storeNames: string[] | undefined, logger: Logger): ChangePart[] {
  const remove = (what: string, area: string[], chosen: string[], after?: (root: string) => Promise<void>): ChangePart => ({
    what,
    paths: chosen.length > 0 ? area : [],
    async write(root) {
      for (const path of chosen) await removeAndPrune(root, path)
      await after?.(root)
    },
  })
  const under = (dir: string) => paths.filter((path) => path.startsWith(`${dir}/`))
  const links = paths.filter((path) => !path.startsWith('.'))
  const tops = [...new Set(links.map((path) => path.split('/')[0]!))]
  return [
    ...tops.map((top) => remove(`links in ${top}`, [top], links.filter((path) => path.split('/')[0] === top))),
    // Alias links (.multiarch/x86_64 -> amd64) follow the architecture directories left.
    remove('.multiarch links', [MULTIARCH_DIR], under(MULTIARCH_DIR), (root) => syncArchAliases(join(root, MULTIARCH_DIR))),
    {what: 'podman store', paths: storeNames ? [PODMAN_STORE_DIR] : [], write: (root) => updatePodmanStore(root, {remove: storeNames}, logger)},
    remove('metadata', [METADATA_DIR], under(METADATA_DIR)),
  ]
}

/** For each candidate name that is published: its link, metadata and every platform's entries. */
async function publishedPaths(root: string, names: string[]): Promise<{name: string; paths: string[]}[]> {
  const out: {name: string; paths: string[]}[] = []
  for (const name of names) {
    const arches = await platformDirsOf(root, name)
    const candidates = [name, metadataDirRel(name), ...arches.flatMap((arch) => [multiarchLinkRel(arch, name), multiarchMetadataDirRel(arch, name)])]
    const paths: string[] = []
    for (const path of candidates) if (await pathExists(join(root, path))) paths.push(path)
    if (paths.length > 0) out.push({name, paths})
  }
  return out
}


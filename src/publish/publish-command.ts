/**
 * `cvmfs-oci publish` as a function: open the backend, publish each image in turn
 * (one failing does not stop the others), and report.
 */
import {chooseTarget, openBackend} from '../backends/open.js'
import {CvmfsOciError, toCvmfsOciError, UsageError} from '../errors.js'
import {archiveRepoTags} from '../fetch/docker-archive.js'
import {parseSource} from '../fetch/source.js'
import type {RegistryOptions} from '../fetch/skopeo.js'
import type {Logger} from '../log.js'
import {platformOptions} from '../oci/platform.js'
import {configAlongside, publishImage, startInspect, type PublishResult} from './publish-image.js'

export interface PublishCommandOptions {
  images: string[]
  /** `--root DIR`: a directory repository. */
  root?: string
  /** `--repo NAME`: a CVMFS repository (`--ingest`: through cvmfs_server ingest). */
  repo?: string
  ingest?: boolean
  /** `--config FILE` (repositories, cvmfsMount, stateDir). */
  configPath?: string
  platform?: string
  name?: string
  registry: RegistryOptions
  tmpDir?: string
  lockTimeoutMs: number
  logger: Logger
}

export interface PublishSummary {
  root: string
  images: PublishResult[]
  failed: {source: string; error: Record<string, unknown>}[]
  /** The first failure (its exit code is the command's); absent on success. */
  failure?: CvmfsOciError
}

/** parseSource, with the name a docker-archive was saved under when none was given. */
async function sourceWithName(image: string, name?: string) {
  const archive = /^docker-archive:([^:]+)$/.exec(image)
  if (archive && !name) {
    const tags = await archiveRepoTags(archive[1]!).catch(() => [] as string[])
    if (tags.length === 1) return parseSource(image, tags[0])
  }
  return parseSource(image, name)
}

export async function publishCommand(options: PublishCommandOptions): Promise<PublishSummary> {
  const {logger} = options
  if (options.name && options.images.length > 1) {
    throw new UsageError('--name names one image, but several were given', {hint: 'Publish them one at a time.'})
  }
  const platform = platformOptions(options.platform)
  // Parse every argument first: a typo fails before anything is fetched.
  const sources = await Promise.all(options.images.map((image) => sourceWithName(image, options.name)))
  const target = chooseTarget({root: options.root, repo: options.repo, ingest: options.ingest, configPath: options.configPath})
  // The first image's manifest is asked for while the repository is opened (the lock).
  // If the repository cannot be opened, that request is stopped.
  const stopInspect = new AbortController()
  const first = sources[0]
  const alsoConfig = first !== undefined && (await configAlongside(target.root, first, {...platform, directory: target.kind === 'directory'}))
  const inspected = first ? startInspect(first, {...platform, registry: options.registry, logger, signal: stopInspect.signal, alsoConfig}) : undefined
  const backend = await openBackend(target, {logger, lockTimeoutMs: options.lockTimeoutMs, tmpDir: options.tmpDir}).catch((error: unknown) => {
    stopInspect.abort()
    throw error
  })
  const summary: PublishSummary = {root: backend.root, images: [], failed: []}
  try {
    for (const source of sources) {
      try {
        summary.images.push(
          await publishImage(backend, source, {
            ...platform,
            registry: options.registry,
            logger,
            tmpDir: options.tmpDir,
            inspected,
          }),
        )
      } catch (error) {
        const failure = toCvmfsOciError(error)
        if (sources.length > 1) logger.error(`${source.input}: ${failure.display()}`)
        summary.failed.push({source: source.input, error: failure.toJSON()})
        summary.failure ??= failure
      }
    }
  } finally {
    inspected?.stop.abort()
    await backend.close()
  }
  if (sources.length > 1 && summary.failed.length > 0) {
    logger.error(`${summary.failed.length} of ${sources.length} image(s) failed: ${summary.failed.map((f) => f.source).join(', ')}`)
  }
  return summary
}

/**
 * `cvmfs-oci sync WISHLIST` as a function: expand the wish list (tag patterns through
 * `skopeo list-tags`), then publish each image in turn into the wish list's repository
 * (or --repo / --root). An image already published at the same digests costs no
 * transaction; one failing does not stop the others. Made for unattended runs: one line
 * per image (with --timestamps from cron or a timer), a closing summary, --json.
 */
import {chooseTarget, describeTarget, openBackend, readOnlyBackend, type TargetOptions} from '../backends/open.js'
import {toCvmfsOciError, type CvmfsOciError} from '../errors.js'
import {listTags, type RegistryOptions} from '../fetch/skopeo.js'
import {parseSource, type ImageSource} from '../fetch/source.js'
import {formatBytes, Logger} from '../log.js'
import {platformOptions} from '../oci/platform.js'
import type {PublishResult} from '../publish/publish-image.js'
import {formatReference} from '../reference/reference.js'
import {readWishlist, type Wish} from './wishlist.js'

export interface SyncOptions extends TargetOptions {
  wishlist: string
  platform?: string
  registry: RegistryOptions
  /** Plan only (--dry-run); absent, as the flag not given, means publish. */
  dryRun?: boolean
  tmpDir?: string
  lockTimeoutMs: number
  logger: Logger
}

export interface SyncFailure {
  /** The wish list entry (or the image it expanded to). */
  input: string
  line: number
  error: Record<string, unknown>
}

export interface SyncSummary {
  wishlist: string
  repository: string
  /** Absent unless --dry-run. */
  dryRun?: boolean
  images: (PublishResult & {line: number})[]
  failed: SyncFailure[]
  counts: {published: number; linked: number; unchanged: number; failed: number}
  seconds: number
  /** The first failure (its exit code is the command's); absent on success. */
  failure?: CvmfsOciError
}

interface Planned {
  source: ImageSource
  wish: Wish
}

export async function syncCommand(options: SyncOptions): Promise<SyncSummary> {
  const started = Date.now()
  const {logger} = options
  const wishlist = await readWishlist(options.wishlist)
  if (options.repo !== undefined && options.repo !== wishlist.repository) {
    logger.warn(`--repo ${options.repo} overrides cvmfs_repo ${wishlist.repository} of ${options.wishlist}`)
  }
  if (options.root !== undefined) logger.info(`publishing into the directory ${options.root}, not cvmfs_repo ${wishlist.repository}`)
  const target = chooseTarget({...options, repo: options.repo ?? (options.root === undefined ? wishlist.repository : undefined)})
  // --platform wins over the wish list's platform:.
  const platform = platformOptions(options.platform ?? wishlist.platform)
  const summary: SyncSummary = {
    wishlist: options.wishlist,
    repository: describeTarget(target),
    dryRun: options.dryRun,
    images: [],
    failed: [],
    counts: {published: 0, linked: 0, unchanged: 0, failed: 0},
    seconds: 0,
  }
  const fail = (input: string, line: number, error: unknown) => {
    const failure = toCvmfsOciError(error)
    logger.error(`${input} (line ${line}): ${failure.display().replaceAll('\n', ' ')}`)
    summary.failed.push({input, line, error: failure.toJSON()})
    summary.failure ??= failure
  }

  // Expand tag patterns first: a registry that cannot list its tags fails that entry only.
  const planned: Planned[] = []
  for (const wish of wishlist.wishes) {
    try {
      for (const reference of await expand(wish, options.registry, logger)) planned.push({source: parseSource(reference), wish})
    } catch (error) {
      fail(wish.input, wish.line, error)
    }
  }
  logger.info(`sync ${options.wishlist}: ${planned.length} image(s) from ${wishlist.wishes.length} entries into ${summary.repository}${options.dryRun ? ' (dry run)' : ''}`)

  // Per-image detail only with --debug: unattended logs get one line per image.
  // (The live line on a terminal stays: a long download is not silence.)
  const quiet = new Logger({stream: logger.stream, level: logger.level === 'debug' ? 'debug' : 'warn', timestamps: logger.timestamps, live: logger.live})
  const backend = options.dryRun ? readOnlyBackend(target) : await openBackend(target, {logger, lockTimeoutMs: options.lockTimeoutMs, tmpDir: options.tmpDir})
  try {
    // Loaded once the wish list is read: its first line does not wait for the publish path.
    const {publishImage} = await import('../publish/publish-image.js')
    for (const {source, wish} of planned) {
      try {
        const result = await publishImage(backend, source, {
          ...platform,
          registry: wish.insecure ? {...options.registry, tlsVerify: false} : options.registry,
          logger: quiet,
          tmpDir: options.tmpDir,
          dryRun: options.dryRun,
        })
        summary.images.push({...result, line: wish.line})
        summary.counts[result.status]++
        logger.info(imageLine(result, options.dryRun === true))
      } catch (error) {
        fail(source.input, wish.line, error)
      }
    }
  } finally {
    await backend.close()
  }
  summary.counts.failed = summary.failed.length
  summary.seconds = (Date.now() - started) / 1000
  const {published, linked, unchanged, failed} = summary.counts
  const verb = options.dryRun ? 'would publish' : 'published'
  logger.info(
    `sync ${options.wishlist}: ${verb} ${published}, ${options.dryRun ? 'would link' : 'linked'} ${linked}, unchanged ${unchanged}, failed ${failed}` +
      ` (${summary.seconds.toFixed(1)} s)${failed ? `: ${summary.failed.map((f) => f.input).join(', ')}` : ''}`,
  )
  return summary
}

/** The concrete references of one entry: itself, or the registry's tags its pattern matches. */
async function expand(wish: Wish, registry: RegistryOptions, logger: Logger): Promise<string[]> {
  if (!wish.tagPattern) return [formatReference(wish.reference)]
  const {registry: host, repository} = wish.reference
  const options = wish.insecure ? {...registry, tlsVerify: false} : registry
  const tags = (await listTags(`docker://${host}/${repository}`, options, logger)).filter((tag) => wish.tagPattern!.test(tag)).sort()
  if (tags.length === 0) logger.warn(`${wish.input} (line ${wish.line}): no tag of ${host}/${repository} matches`)
  return tags.map((tag) => formatReference({registry: host, repository, tag}))
}

function imageLine(result: PublishResult, dryRun: boolean): string {
  const status = dryRun && result.status !== 'unchanged' ? `would ${result.status === 'published' ? 'publish' : 'link'}` : result.status
  const size = result.size > 0 ? formatBytes(result.size) : '-'
  return `${status.padEnd(13)} ${result.reference}  ${result.configDigest.slice(7, 19)}  ${size}  ${result.seconds.toFixed(1)} s`
}

/**
 * What both CVMFS backends (transaction and ingest) share: the repository's mount point,
 * our state outside it (`/cvmfs/NAME` is read-only outside a transaction, so the lock and
 * the transaction marker live in the state directory, default /var/lib/cvmfs-oci/NAME),
 * the repository lock, and recovery from a run that was killed mid-transaction.
 *
 * The marker `transaction.json` names the cvmfs-oci process that opened the transaction.
 * When the repository is in a transaction (cvmfs-server.ts isInTransaction), the next run aborts it
 * only when the marker's process is gone; a transaction someone else opened (an admin, DUCC)
 * is never touched.
 *
 * `ingest-unfinished.json` names the flat roots an ingest sent whose extended attributes
 * are still to be set (cvmfs-ingest.ts). A run killed in between leaves it; the next run
 * deletes those flat roots (no link points to them yet), so that no publish ever links a
 * flat root that lost its `security.capability`.
 */
import {rmSync} from 'node:fs'
import {join} from 'node:path'

import {BusyError, UsageError, UserError} from '../errors.js'
import {rm, stat, writeFile} from '../fs-promises.js'
import {WORK_DIR} from '../layout/paths.js'
import type {Logger} from '../log.js'
import type {BackendOptions, RepositoryBackend} from './backend.js'
import {mountedHead, publishedHead, type Head} from './cvmfs-gateway.js'
import {abortTransaction, ingest, isInTransaction, notAPublisher, readServerConfig, refreshMount, type ServerConfig} from './cvmfs-server.js'
import {acquireLock, currentHolder, describeHolder, holderIsGone, readHolder, type Holder, type Lock} from './lock.js'

/** CVMFS's own rule for repository names (a fully qualified name, e.g. unpacked.cern.ch). */
const REPOSITORY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export interface CvmfsOptions extends BackendOptions {
  /** Where repositories are mounted (/cvmfs). */
  mount: string
  /** cvmfs-oci's state directory (/var/lib/cvmfs-oci); this repository's state is below it. */
  stateDir: string
}

/** The newest published revision, and the one a publisher's view shows. */
export interface Heads {
  published: Head
  mounted: Head
}

/** Flat roots sent by ingest whose extended attributes are not set yet, and who sent them. */
interface Unfinished extends Holder {
  paths: string[]
}

export class CvmfsRepository {
  /** Our state for this repository: lock, marker, gc marks, ingest scratch. */
  readonly stateDir: string
  private readonly marker: string
  private readonly unfinished: string

  private constructor(
    readonly name: string,
    readonly root: string,
    stateDir: string,
    readonly lock: Lock,
    readonly logger: Logger,
    /** Its server.conf: spool directory, stratum-0, gateway. */
    readonly config: ServerConfig,
    /** How long to wait for a busy gateway lease, in ms (--lock-timeout). */
    readonly lockTimeoutMs: number,
  ) {
    this.stateDir = stateDir
    this.marker = join(stateDir, 'transaction.json')
    this.unfinished = join(stateDir, 'ingest-unfinished.json')
  }

  /**
   * Check that `name` is a repository this machine publishes and is mounted, take its lock
   * (waiting up to lockTimeoutMs), and abort a transaction a killed cvmfs-oci run left open.
   */
  static async open(name: string, options: CvmfsOptions): Promise<CvmfsRepository> {
    if (!REPOSITORY_NAME.test(name) || name.length > 255) {
      throw new UsageError(`invalid repository name ${JSON.stringify(name)}`, {code: 'E_BAD_REPOSITORY', hint: 'A CVMFS repository name looks like unpacked.example.org.'})
    }
    const {logger} = options
    const root = join(options.mount, name)
    const config = await readServerConfig(name, logger)
    if (!config) throw notAPublisher(name)
    if (!(await stat(root).then((s) => s.isDirectory(), () => false))) {
      throw new UserError(`repository ${name} is not mounted at ${root}`, {
        code: 'E_REPO_NOT_MOUNTED',
        hint: `cvmfs_server mount ${name} mounts it (or set cvmfsMount in the configuration, or CVMFS_OCI_CVMFS_MOUNT, if it is mounted elsewhere).`,
      })
    }
    const stateDir = join(options.stateDir, name)
    const lock = await acquireLock(join(stateDir, 'lock'), `repository ${name}`, options.lockTimeoutMs, logger)
    const repository = new CvmfsRepository(name, root, stateDir, lock, logger, config, options.lockTimeoutMs)
    try {
      // Read again: while we waited for the lock, another cvmfs-oci may have opened and closed one.
      await repository.recover(await isInTransaction(config))
      await repository.removeUnfinished()
      // Through a gateway this publisher's view may be behind what others published: what
      // the command reads first (is it published? what is garbage?) must be the newest.
      if (repository.gateway) await repository.catchUp()
    } catch (error) {
      await lock.release()
      throw error
    }
    return repository
  }

  /** A transaction is open: is it one a dead cvmfs-oci run left? Then abort it. */
  private async recover(inTransaction: boolean): Promise<void> {
    const marker = await readHolder(this.marker)
    if (!inTransaction) {
      // Killed before the transaction opened, or after it closed.
      if (marker) await rm(this.marker, {force: true})
      return
    }
    if (marker && holderIsGone(marker)) {
      this.logger.warn(`repository ${this.name} was left in a transaction by cvmfs-oci ${describeHolder(marker)}, which is gone: aborting that transaction`)
      await abortTransaction(this.name, this.logger)
      await rm(this.marker, {force: true})
      return
    }
    throw new BusyError(
      marker
        ? `repository ${this.name} is in a transaction opened by cvmfs-oci ${describeHolder(marker)}`
        : `repository ${this.name} is in a transaction that cvmfs-oci did not open`,
      {
        code: 'E_TRANSACTION_OPEN',
        hint: marker
          ? `That process still runs (or its pid was reused): wait for it. If it is not cvmfs-oci, delete ${this.marker}.`
          : `Someone else is changing ${this.name}; cvmfs-oci leaves it alone. Wait, or end it: cvmfs_server publish ${this.name} (keep) or cvmfs_server abort -f ${this.name} (discard).`,
      },
    )
  }

  /** Flat roots a killed ingest sent without their extended attributes: delete them. */
  private async removeUnfinished(): Promise<void> {
    const left = (await readHolder(this.unfinished)) as Unfinished | undefined
    if (!left || !holderIsGone(left)) return
    const present: string[] = []
    for (const path of left.paths) if (await stat(join(this.root, path)).then(() => true, () => false)) present.push(path)
    if (present.length > 0) {
      this.logger.warn(
        `cvmfs-oci ${describeHolder(left)} was stopped before it set the extended attributes of ${present.join(', ')}, which no link points to yet: deleting them (a publish unpacks them again)`,
      )
      await ingest(this.name, {delete: present}, this.logger)
    }
    await rm(this.unfinished, {force: true})
  }

  /** Say that these flat roots are about to be sent without their extended attributes. */
  async markUnfinished(paths: string[]): Promise<void> {
    await writeFile(this.unfinished, JSON.stringify({...currentHolder(), paths} satisfies Unfinished))
  }

  async clearUnfinished(): Promise<void> {
    await rm(this.unfinished, {force: true})
  }

  /** Say that this process is about to open a transaction. */
  async markTransaction(): Promise<void> {
    await writeFile(this.marker, JSON.stringify(currentHolder()))
  }

  async clearMarker(): Promise<void> {
    await rm(this.marker, {force: true})
  }

  clearMarkerSync(): void {
    rmSync(this.marker, {force: true})
  }

  async release(): Promise<void> {
    await this.lock.release()
  }

  /** The newest published revision and the one this publisher's view shows (undefined without CVMFS_STRATUM0). */
  async heads(): Promise<Heads | undefined> {
    const {stratum0, spoolDir} = this.config
    if (!stratum0) return undefined
    const [published, mounted] = await Promise.all([publishedHead(stratum0), mountedHead(spoolDir, this.logger)])
    return {published, mounted}
  }

  /**
   * Bring this publisher's view to the newest published revision, if it is behind (outside
   * a transaction). Returns the revisions as they are then.
   */
  async catchUp(): Promise<Heads | undefined> {
    const heads = await this.heads()
    if (!heads || heads.mounted.revision >= heads.published.revision) return heads
    this.logger.debug(`${this.name}: this publisher's view is at revision ${heads.mounted.revision}, the newest is ${heads.published.revision}: remounting it`)
    await refreshMount(this.name, this.logger)
    return {published: heads.published, mounted: await mountedHead(this.config.spoolDir, this.logger)}
  }

  /** The gateway's API URL when this repository is published through one (other publishers may change it meanwhile). */
  get gateway(): string | undefined {
    return this.config.gatewayUrl
  }
}

/**
 * Remove the work directory publish stages flat roots in, inside a change, so that no
 * bookkeeping is ever published (a CVMFS repository keeps none of ours: lock and marker
 * live in the state directory).
 */
export async function removeWorkDir(root: string): Promise<void> {
  await rm(join(root, WORK_DIR), {recursive: true, force: true})
}

/** What the two CVMFS backends share: their repository, and releasing it. */
export abstract class CvmfsBackend implements RepositoryBackend {
  readonly root: string
  readonly stateDir: string
  readonly description: string
  /**
   * Through a gateway, publishers on other machines change the repository at the same
   * time: callers then make each change as narrow as the layout allows (backend.ts).
   */
  readonly concurrentPublishers: boolean
  /** New flat roots get nested catalogs on their big subtrees (backend.ts). */
  readonly nestedCatalogs = true
  protected readonly logger: Logger

  protected constructor(
    protected readonly repository: CvmfsRepository,
    how: string,
    narrowChanges = false,
  ) {
    this.root = repository.root
    this.stateDir = repository.stateDir
    this.logger = repository.logger
    this.description = `CVMFS repository ${repository.name} (${how}${repository.gateway ? `, through the gateway ${repository.gateway}` : ''})`
    this.concurrentPublishers = narrowChanges && repository.gateway !== undefined
  }

  abstract change<T>(paths: string[], change: (root: string) => Promise<T>): Promise<T>

  async close(): Promise<void> {
    await this.repository.release()
  }
}

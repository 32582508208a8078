/**
 * The CVMFS transaction backend: every change is one `cvmfs_server transaction
 * NAME[/SUB]` … `cvmfs_server publish NAME`, written straight into the union mount
 * `/cvmfs/NAME`. Any error aborts (`cvmfs_server abort -f NAME`) and the original error
 * is what the caller sees; SIGINT/SIGTERM abort too. Downloads happen before `change` is
 * called, so a transaction lasts as long as the layer merge and a few small writes.
 */
import {setTimeout as sleep} from 'node:timers/promises'

import {BugError, BusyError, ExternalError} from '../errors.js'
import {someOf, type Logger} from '../log.js'
import {anyChange, missingFrom, overlappingLeases, scanChanges, type Changes, type Written} from './cvmfs-gateway.js'
import {abortTransaction, abortTransactionSync, openTransaction, publishTransaction} from './cvmfs-server.js'
import {CvmfsBackend, CvmfsRepository, removeWorkDir, type CvmfsOptions} from './cvmfs-repository.js'
import {parentScope, transactionScope} from './scope.js'
import {SignalGuard} from './signals.js'

export class CvmfsTransactionBackend extends CvmfsBackend {
  private constructor(repository: CvmfsRepository) {
    super(repository, 'transactions', true)
  }

  static async open(name: string, options: CvmfsOptions): Promise<CvmfsTransactionBackend> {
    return new CvmfsTransactionBackend(await CvmfsRepository.open(name, options))
  }

  async change<T>(paths: string[], change: (root: string) => Promise<T>): Promise<T> {
    const {name} = this.repository
    const guard = new SignalGuard(this.logger, () => {
      // The transaction may be open (or opening): abort it; "not in a transaction" is harmless.
      const problem = abortTransactionSync(name, this.logger)
      if (problem) this.logger.warn(`${problem}; the next run aborts it`)
      else this.repository.clearMarkerSync()
      this.repository.lock.releaseSync()
    })
    try {
      return await inTransaction(
        this.repository,
        paths,
        async () => {
          const result = await change(this.root)
          await removeWorkDir(this.root)
          return result
        },
        () => guard.hold(),
      )
    } finally {
      guard.dispose(() => this.repository.lock.releaseSync())
    }
  }
}

/**
 * One transaction on `repository`, scoped to the deepest path holding `paths` (through a
 * gateway, the lease): open it, run `change` (which writes below the repository's root),
 * publish. A change that wrote nothing is aborted instead (no empty revision). On any
 * error it is aborted and the original error rethrown. `beforePublish` runs just before
 * `cvmfs_server publish` (to hold signals). Signals are the caller's business.
 *
 * Through a gateway (cvmfs-gateway.ts): a busy lease is waited for, up to the lock timeout;
 * a transaction whose view is not the newest revision is opened again; what was written
 * outside the lease fails the change before it is published (the gateway would drop it
 * silently); after publishing, what was written is read back.
 */
export async function inTransaction<T>(repository: CvmfsRepository, paths: string[], change: () => Promise<T>, beforePublish: () => void = () => {}): Promise<T> {
  const {name, logger} = repository
  const scope = await openScoped(repository, await transactionScope(repository.root, paths))
  let result: T
  let changes: Changes
  try {
    result = await change()
    changes = repository.gateway ? await scanChanges(repository.config.spoolDir, scope) : await anyChange(repository.config.spoolDir)
    if (changes.outside.length > 0) throw outsideLease(repository, scope, changes.outside)
    if (changes.written.length === 0 && changes.deleted.length === 0) {
      logger.debug(`${name}${scope ? `/${scope}` : ''}: nothing to change, aborting the transaction`)
      await abortTransaction(name, logger)
      await repository.clearMarker()
      return result
    }
    beforePublish()
    await publishTransaction(name, logger)
  } catch (error) {
    await abortAfter(repository, error, logger)
    throw error
  }
  await repository.clearMarker()
  if (repository.gateway) await readBack(repository, scope, changes.written)
  return result
}

/** How long to wait before asking for a busy lease again when the gateway does not list its leases: doubling from the first, up to the last. */
const LEASE_RETRY_MS = [500, 5000] as const
/** How often to ask the gateway's lease list whether a busy lease is free. */
const LEASE_POLL_MS = 200

/**
 * Wait until the lease `scope` needs may be free: the gateway's lease list no longer names
 * an overlapping lease (asked every LEASE_POLL_MS, a cheap GET), or, where the gateway does
 * not say, for `delay` (±20%). The light parts of an image hold their lease for a second
 * or two: a blind backoff of seconds would leave a publisher idle while it is free.
 */
async function waitForLease(repository: CvmfsRepository, scope: string | undefined, delay: number, deadline: number): Promise<void> {
  const path = leasePath(repository.name, scope)
  for (;;) {
    const left = deadline - Date.now()
    if (left <= 0) return
    const leases = repository.gateway ? await overlappingLeases(repository.gateway, path) : undefined
    if (leases === undefined) return sleep(Math.min(delay * (0.8 + Math.random() * 0.4), left))
    // Free: ask again at once, give or take a little, so that publishers waiting for the same lease do not all ask together.
    if (leases.length === 0) return sleep(Math.min(Math.random() * LEASE_POLL_MS, left))
    await sleep(Math.min(LEASE_POLL_MS, left))
  }
}

/**
 * Open the transaction on `scope` (walked up while the server says its parent is missing),
 * waiting while a gateway says the lease is busy and opening it again when the view it
 * got is not the newest revision. Returns the scope it holds. Leaves our marker in place.
 */
async function openScoped(repository: CvmfsRepository, first: string | undefined): Promise<string | undefined> {
  const {name, logger} = repository
  let scope = first
  let deadline: number | undefined
  let delay: number = LEASE_RETRY_MS[0]
  let told: string | undefined
  await repository.markTransaction()
  try {
    for (;;) {
      const opened = await openTransaction(name, scope, logger)
      if (opened.status === 'no-such-path') {
        if (scope === undefined) throw new BugError(`cvmfs_server transaction ${name} says the repository root does not exist`)
        logger.debug(`cannot open a transaction on ${name}/${scope}: its parent is missing; trying one level up`)
        scope = parentScope(scope)
        continue
      }
      deadline ??= Date.now() + repository.lockTimeoutMs
      if (opened.status === 'busy') {
        const waitingFor = await describeLease(repository, scope, opened.detail)
        if (Date.now() >= deadline) {
          throw new BusyError(`the gateway lease on ${leasePath(name, scope)} is busy: ${waitingFor}`, {
            code: 'E_LEASE_BUSY',
            hint: `Another publisher is changing that part of ${name}: wait for it, or raise --lock-timeout. A lease whose publisher died goes with \`cvmfs_server abort -f ${name}\` on that publisher, or expires (the gateway's max_lease_time).`,
          })
        }
        if (waitingFor !== told) {
          logger.info(`waiting for the gateway lease on ${leasePath(name, scope)}: ${waitingFor}`)
          told = waitingFor
        }
        await waitForLease(repository, scope, delay, deadline)
        delay = Math.min(delay * 2, LEASE_RETRY_MS[1])
        continue
      }
      if (repository.gateway && !(await onNewestRevision(repository))) {
        // Another publisher published between our start and the lease: what we would write
        // is based on an older revision, and would drop what they wrote under our lease.
        await abortTransaction(name, logger)
        if (Date.now() >= deadline) {
          throw new BusyError(`${name}: every transaction opened within --lock-timeout was based on an older revision than the newest (other publishers kept publishing)`, {
            code: 'E_LEASE_BUSY',
            hint: 'Raise --lock-timeout, or publish when the repository is quieter.',
          })
        }
        logger.debug(`${name}: the transaction's view is not the newest revision; opening it again`)
        continue
      }
      return scope
    }
  } catch (error) {
    // Not ours to abort (someone else's transaction, or none): only our marker goes.
    await repository.clearMarker()
    throw error
  }
}

/** `NAME` or `NAME/scope`: a lease path as the gateway names it. */
function leasePath(name: string, scope: string | undefined): string {
  return scope === undefined ? name : `${name}/${scope}`
}

/** Who holds the lease `scope` waits for, as far as the gateway tells. */
async function describeLease(repository: CvmfsRepository, scope: string | undefined, detail: string): Promise<string> {
  const leases = repository.gateway ? await overlappingLeases(repository.gateway, leasePath(repository.name, scope)) : undefined
  if (!leases || leases.length === 0) return detail
  return leases.map((lease) => `${lease.path} is held${lease.hostname ? ` by ${lease.hostname}` : ''}${lease.expires ? ` until ${lease.expires}` : ''}`).join('; ')
}

/** Whether the open transaction's view is the newest published revision. */
async function onNewestRevision(repository: CvmfsRepository): Promise<boolean> {
  const heads = await repository.heads()
  return !heads || heads.published.rootHash === heads.mounted.rootHash
}

function outsideLease(repository: CvmfsRepository, scope: string | undefined, outside: string[]): BugError {
  const shown = someOf(outside)
  return new BugError(`the change of ${repository.name} wrote outside its gateway lease ${leasePath(repository.name, scope)}: ${shown} (the gateway would drop it silently)`, {
    code: 'E_OUTSIDE_LEASE',
  })
}

/**
 * After a publish through a gateway: read back what was written, from a view at least as
 * new as the publish (a publisher's own view may stay behind: it is remounted then).
 */
async function readBack(repository: CvmfsRepository, scope: string | undefined, written: Written[]): Promise<void> {
  const {name, root} = repository
  const heads = await repository.catchUp()
  if (heads && heads.mounted.revision < heads.published.revision) {
    throw new ExternalError(`cannot read back what was published to ${name}: this publisher's view stays at revision ${heads.mounted.revision}, the stratum-0 serves ${heads.published.revision}`, {
      command: `cvmfs_server mount ${name}`,
    })
  }
  const missing = await missingFrom(root, written)
  if (missing.length > 0) {
    const shown = someOf(missing)
    throw new ExternalError(`${name}: the gateway accepted the change of ${leasePath(name, scope)}, but the published revision lacks ${shown}`, {command: `cvmfs_server publish ${name}`}, {
      code: 'E_NOT_PUBLISHED_BACK',
      hint: 'Something changed the transaction between cvmfs-oci and the publish, or the gateway dropped part of it: check the gateway and receiver logs, then publish the image again.',
    })
  }
}

/** Abort after `error`; a failing abort is reported, never thrown over the original error. */
async function abortAfter(repository: CvmfsRepository, error: unknown, logger: Logger): Promise<void> {
  const {name} = repository
  try {
    await abortTransaction(name, logger)
    await repository.clearMarker()
    logger.info(`${name}: transaction aborted (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`)
  } catch (abortError) {
    logger.warn(`could not abort the transaction on ${name} (the next run aborts it): ${(abortError as Error).message}`)
  }
}

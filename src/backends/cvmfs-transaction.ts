/**
 * The CVMFS transaction backend: every change is one `cvmfs_server transaction
 * NAME[/SUB]` … `cvmfs_server publish NAME`, written straight into the union mount
 * `/cvmfs/NAME`. Any error aborts (`cvmfs_server abort -f NAME`) and the original error
 * is what the caller sees; SIGINT/SIGTERM abort too. Downloads happen before `change` is
 * called, so a transaction lasts as long as the layer merge and a few small writes.
 */
import type {Logger} from '../log.js'
import {abortTransaction, abortTransactionSync, openTransaction, publishTransaction} from './cvmfs-server.js'
import {CvmfsBackend, CvmfsRepository, removeWorkDir, type CvmfsOptions} from './cvmfs-repository.js'
import {transactionScope} from './scope.js'
import {SignalGuard} from './signals.js'

export class CvmfsTransactionBackend extends CvmfsBackend {
  private constructor(repository: CvmfsRepository) {
    super(repository, 'transactions')
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
 * One transaction on `repository`, scoped to the deepest existing directory holding
 * `paths`: open it, run `change` (which writes below the repository's root), publish.
 * On any error it is aborted and the original error rethrown. `beforePublish` runs just
 * before `cvmfs_server publish` (to hold signals). Signals are the caller's business.
 */
export async function inTransaction<T>(repository: CvmfsRepository, paths: string[], change: () => Promise<T>, beforePublish: () => void = () => {}): Promise<T> {
  const {name, logger} = repository
  const scope = await transactionScope(repository.root, paths)
  await repository.markTransaction()
  try {
    if ((await openTransaction(name, scope, logger)) === 'no-such-path') {
      logger.debug(`cannot scope the transaction to ${scope}: opening it on the whole repository`)
      await openTransaction(name, undefined, logger)
    }
  } catch (error) {
    // Not ours to abort (someone else's transaction, or none): only our marker goes.
    await repository.clearMarker()
    throw error
  }
  let result: T
  try {
    result = await change()
    beforePublish()
    await publishTransaction(name, logger)
  } catch (error) {
    await abortAfter(repository, error, logger)
    throw error
  }
  await repository.clearMarker()
  return result
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

/**
 * The CVMFS transaction backend: every change is one `cvmfs_server transaction
 * NAME[/SUB]` … `cvmfs_server publish NAME`, written straight into the union mount
 * `/cvmfs/NAME`. Any error aborts (`cvmfs_server abort -f NAME`) and the original error
 * is what the caller sees; SIGINT/SIGTERM abort too. Downloads happen before `change` is
 * called, so a transaction lasts as long as the layer merge and a few small writes.
 */
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
    const scope = await transactionScope(this.root, paths)
    const guard = new SignalGuard(this.logger, () => {
      // The transaction may be open (or opening): abort it; "not in a transaction" is harmless.
      const problem = abortTransactionSync(name, this.logger)
      if (problem) this.logger.warn(`${problem}; the next run aborts it`)
      else this.repository.clearMarkerSync()
      this.repository.lock.releaseSync()
    })
    let result: T
    try {
      await this.repository.markTransaction()
      try {
        if ((await openTransaction(name, scope, this.logger)) === 'no-such-path') {
          this.logger.debug(`cannot scope the transaction to ${scope}: opening it on the whole repository`)
          await openTransaction(name, undefined, this.logger)
        }
      } catch (error) {
        // Not ours to abort (someone else's transaction, or none): only our marker goes.
        await this.repository.clearMarker()
        throw error
      }
      try {
        result = await change(this.root)
        await removeWorkDir(this.root)
        guard.hold()
        await publishTransaction(name, this.logger)
      } catch (error) {
        await this.abortAfter(error)
        throw error
      }
      await this.repository.clearMarker()
    } finally {
      guard.dispose(() => this.repository.lock.releaseSync())
    }
    return result
  }

  /** Abort after `error`; a failing abort is reported, never thrown over the original error. */
  private async abortAfter(error: unknown): Promise<void> {
    const {name} = this.repository
    try {
      await abortTransaction(name, this.logger)
      await this.repository.clearMarker()
      this.logger.info(`${name}: transaction aborted (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`)
    } catch (abortError) {
      this.logger.warn(`could not abort the transaction on ${name} (the next run aborts it): ${(abortError as Error).message}`)
    }
  }
}

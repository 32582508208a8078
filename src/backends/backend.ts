/**
 * A repository backend: where publish writes and how a change becomes visible.
 * The directory backend writes a plain tree; the CVMFS backends (transaction,
 * ingest) wrap the same writes in `cvmfs_server` calls.
 */
import type {Logger} from '../log.js'

export interface RepositoryBackend {
  /**
   * Whether a new flat root may be started as hardlinks into a published one
   * (publish/base-root.ts). True for plain directories; a CVMFS union mount would
   * copy every linked file up, so the CVMFS backends say no.
   */
  readonly hardlinkClones?: boolean
  /**
   * Whether new flat roots get `.cvmfscatalog` markers on their big subtrees
   * (layout/nested-catalogs.ts), so that a container start loads only the catalogs on its
   * path. The CVMFS backends say yes; a plain directory has no catalogs to split.
   */
  readonly nestedCatalogs?: boolean
  /**
   * Whether `change` may run while the image is still downloading (layers unpacked
   * as they arrive). Not while a CVMFS transaction is open: it must stay short.
   */
  readonly downloadDuringChange?: boolean
  /**
   * Whether publishers on other machines change the repository at the same time (a CVMFS
   * repository gateway: each change holds a lease on the one path it is scoped to). Callers
   * then split their work into changes as narrow as the layout allows (publish/parts.ts),
   * each re-reading inside it what it updates. Elsewhere one change holds all of it.
   */
  readonly concurrentPublishers?: boolean
  /** The repository root that readers see (e.g. /cvmfs/NAME or the --root directory). */
  readonly root: string
  /** Human name for messages. */
  readonly description: string
  /** Where cvmfs-oci may keep private state about this repository (gc marks), outside what readers see. */
  readonly stateDir: string
  /**
   * Run `change` with the repository writable under `root`; make it visible when it
   * resolves, roll everything back and rethrow the original error when it throws.
   * `paths` are the repository-relative paths the change will touch (for leases): the
   * change may create, replace or delete them and anything below them; `''` is the whole
   * repository. A change that writes nothing publishes nothing.
   */
  change<T>(paths: string[], change: (root: string) => Promise<T>): Promise<T>
  /** Release what open() took (locks). */
  close(): Promise<void>
}

export interface BackendOptions {
  logger: Logger
  /** How long to wait for another publisher's lock, in ms. */
  lockTimeoutMs: number
}

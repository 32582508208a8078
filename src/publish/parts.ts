/**
 * A repository change in parts, each with the paths it touches, applied in order: the
 * flat root first (the long part, the merge), then the metadata, the podman store and the
 * public link — so that a reader never finds a name whose flat root is missing.
 *
 * Where publishers take turns on one lock (a directory, a stratum-0 of its own) all parts
 * are one change: one transaction, published or aborted as a whole. Where other publishers
 * change the repository at the same time (a CVMFS gateway: `backend.concurrentPublishers`)
 * each part is its own change, under a lease on its own paths only: the merge holds the
 * lease of its flat root alone, and the short parts the lease of one area each
 * (`.metadata`, `podmanStore`, the link), so that no part waits for another publisher's
 * merge, and none waits for the whole repository. Each part then reads what it updates
 * inside its own change (the newest revision, under its lease): two publishers' parts
 * never lose each other's updates. A part that finds nothing to do writes nothing, and the
 * backend publishes nothing for it.
 */
import type {RepositoryBackend} from '../backends/backend.js'

export interface ChangePart {
  /** For messages: `flat root`, `metadata`, `podman store`, `link`. */
  what: string
  /** Repository-relative paths it may create, replace or delete (with what is below them). */
  paths: string[]
  /** Write it below `root` (the repository as the change sees it). */
  write(root: string): Promise<void>
}

/** Apply `parts` in order: as one change, or (concurrent publishers) as one change each. */
export async function applyParts(backend: RepositoryBackend, parts: ChangePart[]): Promise<void> {
  const todo = parts.filter((part) => part.paths.length > 0)
  if (backend.concurrentPublishers) {
    for (const part of todo) await backend.change(part.paths, (root) => part.write(root))
    return
  }
  if (todo.length === 0) return
  await backend.change(
    todo.flatMap((part) => part.paths),
    async (root) => {
      for (const part of todo) await part.write(root)
    },
  )
}

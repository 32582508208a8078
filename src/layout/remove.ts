/**
 * Removing published things: a path and then the directories it leaves empty, so that a
 * removed image leaves no empty `<registry>/<repository>/` behind. The areas of the
 * layout (`.flat`, `.metadata`, `.metadata/.flat`, …: names starting with a dot) stay.
 */
import {basename, dirname, join} from 'node:path'

import {rm, rmdir} from '../fs-promises.js'

/** Remove `rel` (recursively) below `root`, then its parents while they are empty. */
export async function removeAndPrune(root: string, rel: string): Promise<void> {
  await rm(join(root, rel), {recursive: true, force: true})
  let parent = dirname(rel)
  while (parent !== '.' && !basename(parent).startsWith('.')) {
    try {
      await rmdir(join(root, parent))
    } catch {
      return // not empty (or already gone): what is above stays too
    }
    parent = dirname(parent)
  }
}

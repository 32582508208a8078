/**
 * How narrow a transaction can be. `cvmfs_server transaction NAME/SUB` takes a gateway
 * lease on SUB only, so other publishers may change the rest of the repository at the
 * same time; the server refuses a SUB that does not exist yet. A change is scoped to the
 * deepest existing directory that holds every path it touches (DUCC's layout spreads one
 * image over `.flat/`, `.metadata/` and the registry directory, so a publish is
 * repository-wide; garbage collection of flat roots alone is not).
 */
import {lstat} from 'node:fs/promises'
import {join, posix} from 'node:path'

/**
 * The deepest directory holding every path, relative, `''` for the repository root.
 * A changed path's own parent counts, not the path: creating or deleting `a/b` changes
 * the directory `a`.
 */
export function commonParent(paths: readonly string[]): string {
  let common: string[] | undefined
  for (const path of paths) {
    const parent = posix.dirname(posix.normalize(`/${path}`)).split('/').filter((c) => c !== '')
    if (parent.includes('..')) return ''
    if (common === undefined) {
      common = parent
      continue
    }
    let i = 0
    while (i < common.length && i < parent.length && common[i] === parent[i]) i++
    common = common.slice(0, i)
  }
  return (common ?? []).join('/')
}

/**
 * The sub-path to open the transaction on (`undefined`: the whole repository): the common
 * parent of `paths`, walked up to a directory that exists under `root`.
 */
export async function transactionScope(root: string, paths: readonly string[]): Promise<string | undefined> {
  let scope = commonParent(paths)
  while (scope !== '') {
    const info = await lstat(join(root, scope)).catch(() => undefined)
    if (info?.isDirectory()) return scope
    scope = posix.dirname(scope) === '.' ? '' : posix.dirname(scope)
  }
  return undefined
}

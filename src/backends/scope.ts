/**
 * How narrow a transaction can be. `cvmfs_server transaction NAME/SUB` takes a gateway
 * lease on SUB only, so other publishers may change the rest of the repository at the
 * same time; an overlapping lease (SUB itself, a path below or above it) is refused. The
 * server wants SUB's parent to be an existing directory; SUB itself may be missing (it is
 * created in the transaction) or be a file or a symlink.
 *
 * A change is scoped to the deepest path holding every path it touches: a flat root alone
 * is `.flat/<hh>/<hex>`, a public link alone is the link itself. Paths are relative to the
 * repository root; `''` (or `.`) stands for the whole repository.
 */
import {join, posix} from 'node:path'

import {lstat} from '../fs-promises.js'

/** The components of a relative path, normalised; `undefined` when it climbs out (`..`). */
function components(path: string): string[] | undefined {
  const parts = posix.normalize(`/${path}`).split('/').filter((c) => c !== '')
  return parts.includes('..') ? undefined : parts
}

/** The deepest path holding every one of `paths` (a path holds itself), `''` for the repository root. */
export function commonPath(paths: readonly string[]): string {
  let common: string[] | undefined
  for (const path of paths) {
    const parts = components(path)
    if (parts === undefined) return ''
    if (common === undefined) {
      common = parts
      continue
    }
    let i = 0
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++
    common = common.slice(0, i)
  }
  return (common ?? []).join('/')
}

/** The parent of a scope (`undefined`: the scope is a top-level path, whose parent is the root). */
export function parentScope(scope: string): string | undefined {
  const parent = posix.dirname(scope)
  return parent === '.' || parent === '/' ? undefined : parent
}

/**
 * The sub-path to open the transaction on (`undefined`: the whole repository): the common
 * path of `paths`, walked up until its parent is a directory that exists under `root`.
 */
export async function transactionScope(root: string, paths: readonly string[]): Promise<string | undefined> {
  let scope: string | undefined = commonPath(paths) || undefined
  while (scope !== undefined) {
    const parent = parentScope(scope)
    if (parent === undefined) return scope
    const info = await lstat(join(root, parent)).catch(() => undefined)
    if (info?.isDirectory()) return scope
    scope = parent
  }
  return undefined
}

/** Whether `path` is `scope` or below it (`scope` undefined: the whole repository). */
export function inScope(path: string, scope: string | undefined): boolean {
  return scope === undefined || path === scope || path.startsWith(`${scope}/`)
}

/** Whether `path` is a directory above `scope` (one a write below `scope` copies up, unchanged). */
export function aboveScope(path: string, scope: string | undefined): boolean {
  return scope !== undefined && (path === '' || scope.startsWith(`${path}/`))
}

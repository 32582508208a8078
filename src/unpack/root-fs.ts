/**
 * Path resolution scoped to an image root, the guard that keeps every write inside
 * it. Parent directories of an entry are resolved component by component with
 * lstat; a symlink met on the way is followed *inside* the root the way a chroot
 * would (absolute targets start at the root), and one whose target climbs above
 * the root is refused. The final component is never followed.
 *
 * Synchronous on purpose: these are metadata calls of microseconds, and the merge
 * runs them for every entry; a thread-pool round trip each would cost more than the
 * call (decompression keeps running on the pool meanwhile).
 */
import {lstatSync, mkdirSync, readlinkSync} from 'node:fs'

import {hostileEntry} from './entry-path.js'

/** Linux's own limit of symlinks followed in one lookup. */
const MAX_SYMLINKS = 40

export class RootFs {
  /** Resolved parent (entry components joined) → real components below the root. */
  private readonly cache = new Map<string, string[]>()

  constructor(readonly root: string) {}

  /** Resolved parent → its absolute path. */
  private readonly paths = new Map<string, string>()

  /** Absolute path of components below the root (plain names: what resolution returns). */
  abs(components: readonly string[]): string {
    return components.length === 0 ? this.root : `${this.root}/${components.join('/')}`
  }

  /** Forget cached resolutions: call after removing or replacing a directory or symlink. */
  invalidate(): void {
    this.cache.clear()
    this.paths.clear()
  }

  /** {@link resolveDir}, as an absolute path. */
  resolveDirPath(components: readonly string[], entry: string, layer: string): string {
    const key = components.join('/')
    let path = this.paths.get(key)
    if (path === undefined) {
      path = this.abs(this.resolveDir(components, entry, layer))
      this.paths.set(key, path)
    }
    return path
  }

  /**
   * Resolve the directory that holds an entry. Missing directories are created
   * (mode 0700 for now; directory metadata is applied when the merge ends).
   * Returns real components below the root.
   */
  resolveDir(components: readonly string[], entry: string, layer: string): string[] {
    const key = components.join('/')
    const cached = this.cache.get(key)
    if (cached) return cached
    const real = this.walk(components, entry, layer, true)
    this.cache.set(key, real)
    return real
  }

  /**
   * Resolve an existing path (a hardlink target, a whiteout's victim): parents as in
   * resolveDir but nothing is created, the last component not followed. Undefined
   * when a parent does not exist.
   */
  resolveExisting(components: readonly string[], entry: string, layer: string): string[] | undefined {
    if (components.length === 0) return []
    try {
      const parent = this.walk(components.slice(0, -1), entry, layer, false)
      return [...parent, components[components.length - 1]!]
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  private walk(components: readonly string[], entry: string, layer: string, create: boolean): string[] {
    const real: string[] = []
    const pending = [...components]
    let links = MAX_SYMLINKS
    while (pending.length > 0) {
      const part = pending.shift()!
      if (part === '.' || part === '') continue
      if (part === '..') {
        // Only symlink targets bring `..` here (entry names were checked before).
        if (real.length === 0) {
          throw hostileEntry('E_HOSTILE_SYMLINK_ESCAPE', entry, layer, 'goes through a symlink that points outside the image root')
        }
        real.pop()
        continue
      }
      const path = this.abs([...real, part])
      const stat = lstatSync(path, {throwIfNoEntry: false})
      if (!stat) {
        if (!create) throw Object.assign(new Error(`${path} does not exist`), {code: 'ENOENT'})
        mkdirSync(path, {mode: 0o755})
        real.push(part)
      } else if (stat.isDirectory()) {
        real.push(part)
      } else if (stat.isSymbolicLink()) {
        if (--links < 0) throw hostileEntry('E_HOSTILE_SYMLINK_LOOP', entry, layer, 'goes through too many symlinks (a loop?)')
        const target = readlinkSync(path)
        if (target.startsWith('/')) real.length = 0
        pending.unshift(...target.split('/'))
      } else {
        throw hostileEntry('E_NOT_A_DIRECTORY', entry, layer, `needs ${JSON.stringify([...real, part].join('/'))} to be a directory, but the image has a file there`)
      }
    }
    return real
  }
}

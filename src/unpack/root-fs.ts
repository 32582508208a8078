/**
 * Path resolution scoped to an image root, the guard that keeps every write inside
 * it. Parent directories of an entry are resolved component by component with
 * lstat; a symlink met on the way is followed *inside* the root the way a chroot
 * would (absolute targets start at the root), and one whose target climbs above
 * the root is refused. The final component is never followed.
 */
import {lstat, mkdir, readlink} from 'node:fs/promises'
import {join} from 'node:path'

import {hostileEntry} from './entry-path.js'

/** Linux's own limit of symlinks followed in one lookup. */
const MAX_SYMLINKS = 40

export class RootFs {
  /** Resolved parent (entry components joined) → real components below the root. */
  private readonly cache = new Map<string, string[]>()

  constructor(readonly root: string) {}

  /** Absolute path of components below the root. */
  abs(components: readonly string[]): string {
    return components.length === 0 ? this.root : join(this.root, ...components)
  }

  /** Forget cached resolutions: call after removing or replacing a directory or symlink. */
  invalidate(): void {
    this.cache.clear()
  }

  /**
   * Resolve the directory that holds an entry. Missing directories are created
   * (mode 0755, as tar and umoci do). Returns real components below the root.
   */
  async resolveDir(components: readonly string[], entry: string, layer: string): Promise<string[]> {
    const key = components.join('/')
    const cached = this.cache.get(key)
    if (cached) return cached
    const real = await this.walk(components, entry, layer, {create: true, budget: {links: MAX_SYMLINKS}})
    this.cache.set(key, real)
    return real
  }

  /**
   * Resolve an existing path for a hardlink target: parents as in resolveDir (but
   * nothing is created), the last component not followed.
   */
  async resolveExisting(components: readonly string[], entry: string, layer: string): Promise<string[] | undefined> {
    if (components.length === 0) return []
    try {
      const parent = await this.walk(components.slice(0, -1), entry, layer, {create: false, budget: {links: MAX_SYMLINKS}})
      return [...parent, components[components.length - 1]!]
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }

  private async walk(
    components: readonly string[],
    entry: string,
    layer: string,
    options: {create: boolean; budget: {links: number}},
  ): Promise<string[]> {
    const real: string[] = []
    const pending = [...components]
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
      let stat
      try {
        stat = await lstat(path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !options.create) throw error
        await mkdir(path, {mode: 0o755})
        real.push(part)
        continue
      }
      if (stat.isDirectory()) {
        real.push(part)
      } else if (stat.isSymbolicLink()) {
        if (--options.budget.links < 0) {
          throw hostileEntry('E_HOSTILE_SYMLINK_LOOP', entry, layer, 'goes through too many symlinks (a loop?)')
        }
        const target = await readlink(path)
        if (target.startsWith('/')) real.length = 0
        pending.unshift(...target.split('/'))
      } else {
        throw hostileEntry('E_NOT_A_DIRECTORY', entry, layer, `needs ${JSON.stringify([...real, part].join('/'))} to be a directory, but the image has a file there`)
      }
    }
    return real
  }
}

/**
 * Start a merge from an already published flat root instead of from nothing: an
 * image built on a published base (same first layers, same ChainID) only needs its
 * own layers applied. Directories are created anew (their metadata is applied when
 * the merge ends, like every directory's); everything else is hardlinked, which is
 * safe because the merge never changes a file in place — every upper entry unlinks
 * and recreates — so the base root is never touched.
 */
import {linkSync, lstatSync, mkdirSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import type {MergeState} from './apply-entry.js'

/**
 * Clone `source` into `state.root` (which exists and is empty), leaving out the
 * relative paths in `skip` (what publish added to the base: mount points, markers).
 * Returns the number of entries cloned.
 */
export function cloneTree(source: string, state: MergeState, skip: ReadonlySet<string>): number {
  let entries = 0
  const walk = (from: string, to: string, rel: string): void => {
    for (const child of readdirSync(from, {withFileTypes: true})) {
      const childRel = rel ? `${rel}/${child.name}` : child.name
      if (skip.has(childRel)) continue
      const src = join(from, child.name)
      const dest = join(to, child.name)
      entries++
      if (child.isDirectory()) {
        const stat = lstatSync(src)
        mkdirSync(dest, {mode: 0o700})
        state.dirs.set(dest, {mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, mtime: stat.mtimeMs / 1000})
        walk(src, dest, childRel)
      } else {
        linkSync(src, dest)
      }
    }
  }
  walk(source, state.root, '')
  return entries
}

/**
 * Start a merge from an already published flat root instead of from nothing: an
 * image built on a published base (same first layers, same ChainID) only needs its
 * own layers applied. Directories are created anew (their metadata is applied when
 * the merge ends, like every directory's); everything else is hardlinked, which is
 * safe because the merge never changes a file in place — every upper entry unlinks
 * and recreates — so the base root is never touched.
 */
import {linkSync, lstatSync, mkdirSync, readdirSync} from 'node:fs'
import {resolve} from 'node:path'

import type {MergeState} from './apply-entry.js'

/** Entries cloned between two turns of the event loop (a clone of a large root takes seconds). */
const ENTRIES_PER_TURN = 2000

/**
 * Clone `source` into `state.root` (which exists and is empty), leaving out the
 * relative paths in `skip` (what publish added to the base: mount points, markers).
 * Returns the number of entries cloned and the directories of `source` cloned (their
 * attributes are copied separately: they live on the directory, not a shared inode).
 * Gives the event loop a turn every few thousand entries: the download of the layers
 * to apply runs meanwhile, and signals are handled.
 */
export async function cloneTree(source: string, state: MergeState, skip: ReadonlySet<string>): Promise<{entries: number; dirs: string[]}> {
  let entries = 0
  const dirs: string[] = []
  const walk = async (from: string, to: string, rel: string): Promise<void> => {
    for (const child of readdirSync(from, {withFileTypes: true})) {
      const childRel = rel ? `${rel}/${child.name}` : child.name
      if (skip.has(childRel)) continue
      const src = `${from}/${child.name}`
      const dest = `${to}/${child.name}`
      if (++entries % ENTRIES_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve))
      if (child.isDirectory()) {
        const stat = lstatSync(src)
        mkdirSync(dest, {mode: 0o700})
        state.dirs.set(dest, {mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, mtime: stat.mtimeMs / 1000})
        dirs.push(src)
        await walk(src, dest, childRel)
      } else {
        linkSync(src, dest)
      }
    }
  }
  await walk(resolve(source), state.root, '')
  return {entries, dirs}
}

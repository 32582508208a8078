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
import type {LinkJob} from './layer-worker.js'

/** Entries walked between two turns of the event loop (a clone of a large root takes seconds). */
const ENTRIES_PER_TURN = 2000
/** Hardlinks per chunk of the shared list: a thread takes one chunk at a time. */
const LINKS_PER_CHUNK = 500
/** Hardlinks listed before they are made: what bounds the list's memory on a large base. */
const LINKS_PER_BATCH = 16384

/** A turn of the event loop: the download goes on, signals are handled. */
const turn = () => new Promise((resolve) => setImmediate(resolve))

/** A second thread that takes chunks of the links (the merge's layer reader). */
export interface LinkHelper {
  link(job: LinkJob): Promise<void>
}

/**
 * Clone `source` into `state.root` (which exists and is empty), leaving out the
 * relative paths in `skip` (what publish added to the base: mount points, markers).
 * Returns the number of entries cloned and the directories of `source` cloned (their
 * attributes are copied separately: they live on the directory, not a shared inode).
 *
 * The base is walked and its directories made; its other entries are listed, and
 * hardlinked `linksPerBatch` at a time (most of the time: one link() each, the kernel's
 * work): this thread and `helper`'s take chunks of the list until none is left. Gives
 * the event loop a turn every few thousand entries: the download of the layers to
 * apply runs meanwhile, and signals are handled.
 */
export async function cloneTree(
  source: string,
  state: MergeState,
  skip: ReadonlySet<string>,
  helper?: LinkHelper,
  linksPerBatch = LINKS_PER_BATCH,
): Promise<{entries: number; dirs: string[]}> {
  let entries = 0
  const dirs: string[] = []
  // The links listed and not made yet: `names[i]` in directory pair `pairs[dirOf[i]]`.
  let batch = {pairs: [] as [string, string][], dirOf: [] as number[], names: [] as string[]}
  const flush = async () => {
    if (batch.names.length > 0) await linkAll(batch.pairs, Int32Array.from(batch.dirOf), batch.names, helper)
    batch = {pairs: [], dirOf: [], names: []}
  }
  const walk = async (from: string, to: string, rel: string): Promise<void> => {
    // This directory's pair, in the batch it was added to (a new batch adds it again).
    let pair = -1
    let pairBatch: typeof batch | undefined
    for (const child of readdirSync(from, {withFileTypes: true})) {
      const childRel = rel ? `${rel}/${child.name}` : child.name
      if (skip.has(childRel)) continue
      if (++entries % ENTRIES_PER_TURN === 0) await turn()
      if (child.isDirectory()) {
        const src = `${from}/${child.name}`
        const dest = `${to}/${child.name}`
        const stat = lstatSync(src)
        mkdirSync(dest, {mode: 0o700})
        state.dirs.set(dest, {mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, mtime: stat.mtimeMs / 1000})
        dirs.push(src)
        await walk(src, dest, childRel)
      } else {
        if (pairBatch !== batch) {
          pairBatch = batch
          pair = batch.pairs.push([from, to]) - 1
        }
        batch.dirOf.push(pair)
        batch.names.push(child.name)
        if (batch.names.length >= linksPerBatch) await flush()
      }
    }
  }
  await walk(resolve(source), state.root, '')
  await flush()
  return {entries, dirs}
}

/** Make the links of one batch, on this thread and `helper`'s, chunk by chunk. */
async function linkAll(pairs: [string, string][], dirOf: Int32Array, names: string[], helper: LinkHelper | undefined): Promise<void> {
  const chunks = Math.ceil(names.length / LINKS_PER_CHUNK)
  const job: LinkJob = {dirs: pairs, dirOf, names, counter: new Int32Array(new SharedArrayBuffer(4)), chunk: LINKS_PER_CHUNK}
  // Its failure is what is thrown when this thread's chunks went well.
  const helped = helper && chunks > 1 ? helper.link(job) : undefined
  try {
    for (let c; (c = Atomics.add(job.counter, 0, 1)) < chunks; ) {
      for (let i = c * LINKS_PER_CHUNK, end = Math.min(i + LINKS_PER_CHUNK, names.length); i < end; i++) {
        const [from, to] = pairs[dirOf[i]!]!
        linkSync(`${from}/${names[i]}`, `${to}/${names[i]}`)
      }
      await turn()
    }
  } catch (error) {
    // The helper takes no further chunk; it is waited for, so that nothing links after this.
    Atomics.store(job.counter, 0, chunks)
    await helped?.catch(() => {})
    throw error
  }
  await helped
}

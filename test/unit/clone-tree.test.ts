/**
 * The clone of a published root (clone-tree.ts) that an image on a published base
 * starts from: its hardlinks are made by two threads, this one and the layer
 * reader's, which take chunks of one list. Every entry must come out once, linked to the
 * base's inode, and a failure on either thread must stop both.
 */
import {chmodSync, lstatSync, mkdirSync, readdirSync, symlinkSync, unlinkSync, writeFileSync, type Stats} from 'node:fs'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {silentLogger} from '../../src/log.js'
import {MergeState} from '../../src/unpack/apply-entry.js'
import {cloneTree} from '../../src/unpack/clone-tree.js'
import {LayerReader} from '../../src/unpack/layer-worker.js'
import {useTempDir} from '../helpers/temp-dir.js'

/** Every path below `root` (relative), with its lstat. */
function walk(root: string, rel = ''): Map<string, Stats> {
  const found = new Map<string, Stats>()
  for (const name of readdirSync(join(root, rel))) {
    const path = rel ? `${rel}/${name}` : name
    const stat = lstatSync(join(root, path))
    found.set(path, stat)
    if (stat.isDirectory()) for (const [p, s] of walk(root, path)) found.set(p, s)
  }
  return found
}

/** A base of `dirs` directories of `files` files each, a symlink, a nested 0555 directory and one entry to skip. */
function makeBase(base: string, dirs: number, files: number): void {
  mkdirSync(base)
  for (let d = 0; d < dirs; d++) {
    mkdirSync(join(base, `d${d}`))
    for (let f = 0; f < files; f++) writeFileSync(join(base, `d${d}`, `f${f}`), `${d}/${f}`)
  }
  mkdirSync(join(base, 'd0', 'nested'))
  writeFileSync(join(base, 'd0', 'nested', 'deep'), 'deep')
  chmodSync(join(base, 'd0', 'nested'), 0o555)
  symlinkSync('d0/f0', join(base, 'link'))
  writeFileSync(join(base, 'skipped'), 'publish added this')
}

describe('cloneTree', () => {
  const dir = useTempDir('cvmfs-oci-clone-')
  const readers: LayerReader[] = []
  const newReader = () => {
    const reader = new LayerReader()
    readers.push(reader)
    return reader
  }
  afterEach(async () => {
    for (const reader of readers.splice(0)) await reader.close()
  })
  /** A base of `dirs` × `files` (see makeBase), an empty root to clone it into, and the merge's state. */
  const prepare = (dirs: number, files: number) => {
    const base = join(dir(), 'base')
    makeBase(base, dirs, files)
    const root = join(dir(), 'root')
    mkdirSync(root)
    return {base, root, state: new MergeState(root, process.getuid?.() === 0, silentLogger())}
  }

  it('clones a tree of many chunks on two threads: every entry once, files linked to the base, directories made anew', async () => {
    // 3 × 700 files: five chunks of 500, so both threads take some.
    const {base, root, state} = prepare(3, 700)
    // The thread is up before the clone starts (in a merge, it comes up while the base is walked).
    const reader = newReader()
    await reader.link({dirs: [], dirOf: new Int32Array(0), names: [], counter: new Int32Array(new SharedArrayBuffer(4)), chunk: 1})
    const cloned = await cloneTree(base, state, new Set(['skipped']), reader)

    const before = walk(base)
    const after = walk(root)
    before.delete('skipped')
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort())
    expect(cloned.entries).toBe(before.size)
    for (const [path, stat] of after) {
      const original = before.get(path)!
      if (stat.isDirectory()) {
        expect(stat.ino, path).not.toBe(original.ino)
        expect(state.dirs.get(join(root, path))?.mode, path).toBe(original.mode & 0o7777)
      } else {
        expect(stat.ino, path).toBe(original.ino)
      }
    }
    expect(cloned.dirs.sort()).toEqual(['d0', 'd0/nested', 'd1', 'd2'].map((d) => join(base, d)))
  })

  it('clones in batches, a directory whose entries span two batches too', async () => {
    const {base, root, state} = prepare(3, 700)
    const reader = newReader()
    // Batches of 1 000 links (two chunks of 500 each, for two threads): d1's files span
    // the first two, d2's the last two; a directory's pair is listed again in each batch.
    await cloneTree(base, state, new Set(), reader, 1000)
    const before = walk(base)
    const after = walk(root)
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort())
    for (const [path, stat] of after) if (!stat.isDirectory()) expect(stat.ino, path).toBe(before.get(path)!.ino)
  })

  it('fails with the link that failed, on whichever thread it was, and links nothing after it returns', async () => {
    const {base, root, state} = prepare(4, 600)
    const reader = newReader()
    // A file of the base goes away after the walk listed it: its link() fails (ENOENT),
    // in whichever thread takes its chunk.
    const helper = {
      link: (job: Parameters<LayerReader['link']>[0]) => {
        unlinkSync(join(base, 'd2', 'f300'))
        return reader.link(job)
      },
    }
    await expect(cloneTree(base, state, new Set(), helper)).rejects.toMatchObject({code: 'ENOENT'})
    const linked = walk(root).size
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(walk(root).size).toBe(linked)
    // The failed chunk was left where it failed: not every other entry is there.
    expect(linked).toBeLessThan(4 * 600 + 8)
  })

  it("the reader's thread alone makes every link of a job", async () => {
    const from = join(dir(), 'from')
    const to = join(dir(), 'to')
    mkdirSync(from)
    mkdirSync(to)
    const names = Array.from({length: 25}, (_, i) => `f${i}`)
    for (const name of names) writeFileSync(join(from, name), name)
    const job = {dirs: [[from, to]] as [string, string][], dirOf: new Int32Array(names.length), names, counter: new Int32Array(new SharedArrayBuffer(4)), chunk: 4}
    await newReader().link(job)
    expect(readdirSync(to).sort()).toEqual([...names].sort())
    for (const name of names) expect(lstatSync(join(to, name)).ino).toBe(lstatSync(join(from, name)).ino)
  })

  it("the reader's thread reports a failed link with its code and stops the main thread's share", async () => {
    const from = join(dir(), 'from')
    const to = join(dir(), 'to')
    mkdirSync(from)
    mkdirSync(to)
    for (let i = 0; i < 3; i++) writeFileSync(join(from, `f${i}`), String(i))
    const counter = new Int32Array(new SharedArrayBuffer(4))
    const job = {dirs: [[from, to]] as [string, string][], dirOf: Int32Array.of(0, 0, 0, 0), names: ['f0', 'missing', 'f1', 'f2'], counter, chunk: 2}
    await expect(newReader().link(job)).rejects.toMatchObject({code: 'ENOENT', message: expect.stringContaining('missing')})
    // Past the last chunk: the main thread takes none after the failure.
    expect(Atomics.load(counter, 0)).toBeGreaterThanOrEqual(2)
    expect(readdirSync(to)).toEqual(['f0'])
  })
})

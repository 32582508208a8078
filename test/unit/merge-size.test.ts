/**
 * The size of a flat root is counted while it is merged (no walk of the tree after):
 * it must equal what a walk of the tree finds, each hardlinked file once, whatever
 * upper layers replace, link, white out or hide behind an opaque marker.
 */
import {createHash} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {silentLogger} from '../../src/log.js'
import {mergeLayers} from '../../src/unpack/merge.js'
import {treeBytes} from '../../src/unpack/tree-bytes.js'
import {buildTar, type TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const data = (n: number, c = 'x') => c.repeat(n)

const LAYERS: TarEntry[][] = [
  [
    {name: 'a/', type: 'directory'},
    {name: 'a/one', content: data(1000)},
    {name: 'a/two', content: data(2000)},
    {name: 'a/two-link', type: 'link', linkname: 'a/two'},
    {name: 'b/', type: 'directory'},
    {name: 'b/sub/', type: 'directory'},
    {name: 'b/sub/deep', content: data(4000)},
    {name: 'b/shared', content: data(8000)},
    {name: 'c/', type: 'directory'},
    {name: 'c/linked-from-b', type: 'link', linkname: 'b/shared'},
    {name: 'dup', content: data(16)},
    {name: 'dup', content: data(32)},
  ],
  [
    // replace one link of a hardlinked pair: the inode stays through the other
    {name: 'a/two', content: data(300, 'y')},
    // white out a file whose inode has a link elsewhere, and a whole directory holding one
    {name: '.wh.b'},
    {name: 'a/.wh.one'},
    // a file becomes a directory, a directory a file
    {name: 'dup/', type: 'directory'},
    {name: 'dup/inside', content: data(64)},
    {name: 'c', content: data(128)},
  ],
  [
    {name: 'a/', type: 'directory'},
    {name: 'a/.wh..wh..opq'},
    {name: 'a/new', content: data(256)},
    {name: 'a/new-link', type: 'link', linkname: 'a/new'},
    {name: 'x/', type: 'directory'},
    {name: 'x/y', content: data(512)},
  ],
]

const dir = useTempDir('cvmfs-oci-size-', 'all')

describe('the size of a merged root', () => {

  it.each([1, 2, 3])('is what a walk of the tree finds after %i layer(s)', async (count) => {
    const layers = []
    for (const [i, entries] of LAYERS.slice(0, count).entries()) {
      const tar = await buildTar(entries)
      const blobPath = join(dir(), `layer-${count}-${i}.tar`)
      await writeFile(blobPath, tar)
      layers.push({blobPath, expect: {digest: sha(tar), size: tar.length, diffId: sha(tar), label: `${i + 1}/${count}`}})
    }
    const root = join(dir(), `root-${count}`)
    await mkdir(root)
    const stats = await mergeLayers({root, workDir: dir(), logger: silentLogger(), layers})
    expect(stats.treeBytes).toBe(treeBytes(root))
    expect(stats.treeBytes).toBeGreaterThan(0)
  })
})

/**
 * A merge started from a clone of a published root (an image on a published base): the
 * clone's files keep a link in the base, so the count starts from the bytes the base's
 * record gives and follows what the upper layers replace and white out. Where links
 * cannot be told apart (hardlinks within the base, a new link to a cloned file) it leaves
 * the size to a walk (undefined), never a wrong number.
 */
describe('the size of a root merged on a clone of a published root', () => {
  const BASE: TarEntry[] = [
    {name: 'a/', type: 'directory'},
    {name: 'a/one', content: data(1000)},
    {name: 'a/two', content: data(2000)},
    {name: 'b/', type: 'directory'},
    {name: 'b/sub/', type: 'directory'},
    {name: 'b/sub/deep', content: data(4000)},
    {name: 'b/shared', content: data(8000)},
    {name: 'c/', type: 'directory'},
    {name: 'c/file', content: data(100)},
    {name: 'dup', content: data(16)},
    {name: 'keep', content: data(64000)},
  ]
  // The upper layers of the merge above, on a base without hardlinks.
  const UPPER = LAYERS.slice(1)

  async function layer(name: string, entries: TarEntry[], label: string) {
    const tar = await buildTar(entries)
    const blobPath = join(dir(), `${name}.tar`)
    await writeFile(blobPath, tar)
    return {blobPath, expect: {digest: sha(tar), size: tar.length, diffId: sha(tar), label}}
  }

  /** Merge `base` alone, then `upper` on a clone of it; the clone's stats and the tree. */
  async function onClone(name: string, base: TarEntry[], upper: TarEntry[][]) {
    const baseRoot = join(dir(), `${name}-base`)
    await mkdir(baseRoot)
    const baseStats = await mergeLayers({root: baseRoot, workDir: dir(), logger: silentLogger(), layers: [await layer(`${name}-0`, base, '1/1')]})
    const root = join(dir(), name)
    await mkdir(root)
    const layers = []
    for (const [i, entries] of upper.entries()) layers.push(await layer(`${name}-${i + 1}`, entries, `${i + 2}/${upper.length + 1}`))
    const stats = await mergeLayers({root, workDir: dir(), logger: silentLogger(), layers, base: {path: baseRoot, skip: [], bytes: baseStats.treeBytes}})
    return {stats, root, baseRoot}
  }

  it.each([1, 2])('counts exactly what a walk finds after %i layer(s) on the clone', async (count) => {
    const {stats, root, baseRoot} = await onClone(`exact-${count}`, BASE, UPPER.slice(0, count))
    expect(stats.treeBytes).toBeDefined()
    expect(stats.treeBytes).toBe(treeBytes(root))
    // The base is untouched.
    expect(treeBytes(baseRoot)).toBe(1000 + 2000 + 4000 + 8000 + 100 + 16 + 64000)
  })

  it('leaves the size to a walk where the base holds hardlinks that an upper layer splits', async () => {
    const base = [...BASE, {name: 'keep-link', type: 'link', linkname: 'keep'} as TarEntry]
    const {stats, root} = await onClone('base-links', base, [[{name: '.wh.keep'}]])
    expect(stats.treeBytes ?? treeBytes(root)).toBe(treeBytes(root))
    expect(stats.treeBytes).toBeUndefined()
  })

  it('leaves the size to a walk where an upper layer links to a cloned file', async () => {
    const {stats, root} = await onClone('new-link', BASE, [[{name: 'keep-link', type: 'link', linkname: 'keep'}, {name: '.wh.keep'}]])
    expect(stats.treeBytes).toBeUndefined()
    expect(treeBytes(root)).toBe(64000 + 1000 + 2000 + 4000 + 8000 + 100 + 16)
  })

  it('without the base bytes, leaves the size to a walk', async () => {
    const baseRoot = join(dir(), 'unknown-base')
    await mkdir(baseRoot)
    await mergeLayers({root: baseRoot, workDir: dir(), logger: silentLogger(), layers: [await layer('unknown-0', BASE, '1/1')]})
    const root = join(dir(), 'unknown')
    await mkdir(root)
    const stats = await mergeLayers({root, workDir: dir(), logger: silentLogger(), layers: [await layer('unknown-1', UPPER[0]!, '2/2')], base: {path: baseRoot, skip: []}})
    expect(stats.treeBytes).toBeUndefined()
  })
})

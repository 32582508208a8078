/**
 * The size of a flat root is counted while it is merged (no walk of the tree after):
 * it must equal what a walk of the tree finds, each hardlinked file once, whatever
 * upper layers replace, link, white out or hide behind an opaque marker.
 */
import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {silentLogger} from '../../src/log.js'
import {mergeLayers} from '../../src/unpack/merge.js'
import {treeBytes} from '../../src/unpack/tree-bytes.js'
import {buildTar, type TarEntry} from '../helpers/tar.js'

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

describe('the size of a merged root', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cvmfs-oci-size-'))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it.each([1, 2, 3])('is what a walk of the tree finds after %i layer(s)', async (count) => {
    const layers = []
    for (const [i, entries] of LAYERS.slice(0, count).entries()) {
      const tar = await buildTar(entries)
      const blobPath = join(dir, `layer-${count}-${i}.tar`)
      await writeFile(blobPath, tar)
      layers.push({blobPath, expect: {digest: sha(tar), size: tar.length, diffId: sha(tar), label: `${i + 1}/${count}`}})
    }
    const root = join(dir, `root-${count}`)
    await mkdir(root)
    const stats = await mergeLayers({root, workDir: dir, logger: silentLogger(), layers})
    expect(stats.treeBytes).toBe(treeBytes(root))
    expect(stats.treeBytes).toBeGreaterThan(0)
  })
})

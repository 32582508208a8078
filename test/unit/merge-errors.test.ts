/** Layers that are not what they claim are invalid images (exit 4), not bugs. */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {silentLogger} from '../../src/log.js'
import {mergeLayers} from '../../src/unpack/merge.js'
import {buildTar} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('malformed layers', () => {
  const dir = useTempDir('cvmfs-oci-badlayer-', 'all')

  const tar = () => buildTar([{name: 'etc/', type: 'directory'}, {name: 'etc/a', content: 'x'.repeat(5000)}])
  it.each([
    ['gzip of something that is not a tar', async () => gzipSync(randomBytes(4096)), 'tar archive'],
    ['a tar gzipped twice', async () => gzipSync(gzipSync(await tar())), 'tar archive'],
    // zlib ends a truncated stream quietly here; the DiffID check is what catches it.
    ['a truncated gzip stream', async () => gzipSync(await tar()).subarray(0, 200), 'diffid mismatch'],
    ['a truncated tar', async () => (await tar()).subarray(0, 1024), 'tar archive'],
  ])('%s', async (_what, make, kind) => {
    const blob = await make()
    const path = join(dir(), `blob-${Math.random()}`)
    await writeFile(path, blob)
    const root = join(dir(), `root-${Math.random()}`)
    await mkdir(root)
    const expect_ = {digest: sha(blob), size: blob.length, diffId: sha(blob), label: '1/1'}
    await expect(mergeLayers({root, workDir: dir(), logger: silentLogger(), layers: [{blobPath: path, expect: expect_}]})).rejects.toMatchObject({
      code: kind === 'diffid mismatch' ? 'E_DIFFID_MISMATCH' : 'E_BAD_LAYER',
      exitCode: 4,
      message: expect.stringContaining(kind),
    })
  })
})

/**
 * Each layer is opened while the one below is applied (merge.ts): a failure is still the
 * failure of the layer being applied, and a layer opened ahead fails in its own turn.
 */
describe('a layer opened ahead', () => {
  const dir = useTempDir('cvmfs-oci-ahead-', 'all')

  async function layerBlob(name: string, blob: Buffer, diffId = sha(blob)) {
    const path = join(dir(), `${name}-${Math.random()}`)
    await writeFile(path, blob)
    return {blobPath: path, expect: {digest: sha(blob), size: blob.length, diffId, label: name}}
  }
  const good = async (name: string) => {
    const tar = await buildTar([{name: `${name}/`, type: 'directory'}, {name: `${name}/file`, content: name.repeat(3000)}])
    return layerBlob(name, gzipSync(tar), sha(tar))
  }
  const bad = (name: string) => layerBlob(name, gzipSync(randomBytes(4096)))
  const freshRoot = async () => {
    const root = join(dir(), `root-${Math.random()}`)
    await mkdir(root)
    return root
  }

  it('fails with the layer being applied, not with the one read ahead', async () => {
    const root = await freshRoot()
    const layers = [await bad('one'), await good('two')]
    await expect(mergeLayers({root, workDir: dir(), logger: silentLogger(), layers})).rejects.toMatchObject({code: 'E_BAD_LAYER', message: expect.stringContaining('layer one')})
  })

  it('fails with the upper layer once the lower one is applied', async () => {
    const root = await freshRoot()
    const layers = [await good('one'), await bad('two')]
    await expect(mergeLayers({root, workDir: dir(), logger: silentLogger(), layers})).rejects.toMatchObject({code: 'E_BAD_LAYER', message: expect.stringContaining('layer two')})
    await expect(readFile(join(root, 'one', 'file'), 'utf8')).resolves.toBe('one'.repeat(3000))
  })

  it('waits for the blob of a layer opened ahead in its own turn, and reports its failure then', async () => {
    const root = await freshRoot()
    const layers = [await good('one'), await good('two')]
    const waited: string[] = []
    const waitForBlob = async (path: string) => {
      waited.push(path)
      if (path === layers[1]!.blobPath) throw new Error('the download failed')
    }
    await expect(mergeLayers({root, workDir: dir(), logger: silentLogger(), layers, waitForBlob})).rejects.toThrow('the download failed')
    expect(waited).toEqual(layers.map((layer) => layer.blobPath))
    await expect(readFile(join(root, 'one', 'file'), 'utf8')).resolves.toBe('one'.repeat(3000))
  })

  it('drops the failure of a layer opened ahead when the layer below failed first', async () => {
    const root = await freshRoot()
    const layers = [await bad('one'), await good('two')]
    const waitForBlob = async (path: string) => {
      if (path === layers[1]!.blobPath) throw new Error('the download failed')
    }
    await expect(mergeLayers({root, workDir: dir(), logger: silentLogger(), layers, waitForBlob})).rejects.toMatchObject({code: 'E_BAD_LAYER', message: expect.stringContaining('layer one')})
  })
})

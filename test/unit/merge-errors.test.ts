/** Layers that are not what they claim are invalid images (exit 4), not bugs. */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
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

/**
 * The CVMFS backend's own pieces against the test repository (stand-in, or a real
 * stratum-0 with CVMFS_OCI_TEST_REPO): the cvmfs_server driver's answers, a change
 * scoped to the directory it touches, the fallback when that directory does not exist
 * yet, the original error winning over the abort, and the tar stream of ingest.
 */
import {lstat, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {abortTransaction, ingest, openTransaction, repositoryStatus} from '../../src/backends/cvmfs-server.js'
import {CvmfsTransactionBackend} from '../../src/backends/cvmfs-transaction.js'
import {packTree} from '../../src/backends/tar-pack.js'
import {VerificationError} from '../../src/errors.js'
import {silentLogger} from '../../src/log.js'
import {changeCalls, testRepository, type TestRepository} from '../helpers/cvmfs.js'
import {writeRootfs} from '../helpers/rootfs.js'
import {fileCapability} from '../helpers/tar.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

let repo: TestRepository
const saved = {...process.env}
const logger = silentLogger()
const top = `backend-${Date.now().toString(36)}`

beforeAll(async () => {
  repo = await testRepository()
  // The driver runs the cvmfs_server on PATH, as the CLI does.
  Object.assign(process.env, repo.env)
})
afterAll(async () => {
  process.env = saved
  await repo?.cleanup()
})

const open = () =>
  CvmfsTransactionBackend.open(repo.name, {logger, lockTimeoutMs: 0, mount: join(repo.root, '..'), stateDir: process.env.CVMFS_OCI_STATE_DIR ?? '/var/lib/cvmfs-oci'})

describe('the cvmfs_server driver', () => {
  it('reads the server: list, a busy repository, a scope that does not exist', async () => {
    expect(await repositoryStatus(repo.name, logger)).toMatchObject({listed: true, inTransaction: false})
    expect(await openTransaction(repo.name, `${top}/missing`, logger)).toBe('no-such-path')
    expect(await openTransaction(repo.name, undefined, logger)).toBe('opened')
    try {
      expect(await repositoryStatus(repo.name, logger)).toMatchObject({inTransaction: true})
      await expect(openTransaction(repo.name, undefined, logger)).rejects.toMatchObject({code: 'E_TRANSACTION_OPEN', exitCode: 6})
    } finally {
      await abortTransaction(repo.name, logger)
    }
  })
})

describe('the transaction backend', () => {
  it('scopes a change to the deepest existing directory (the whole repository while none exists)', async () => {
    const backend = await open()
    try {
      await repo.clearCalls()
      // Nothing under `top` exists yet: the scope walks up to the root.
      await backend.change([`${top}/a/file`], async (root) => {
        await mkdir(join(root, top, 'a'), {recursive: true})
        await writeFile(join(root, top, 'a', 'file'), 'one\n')
      })
      await backend.change([`${top}/a/file`, `${top}/a/other`], async (root) => writeFile(join(root, top, 'a', 'other'), 'two\n'))
      expect(changeCalls(await repo.calls())).toEqual([
        `transaction ${repo.name} => 0`,
        `publish ${repo.name} => 0`,
        `transaction ${repo.name}/${top}/a => 0`,
        `publish ${repo.name} => 0`,
      ])
      expect(await readFile(join(repo.root, top, 'a', 'other'), 'utf8')).toBe('two\n')
    } finally {
      await backend.close()
    }
  })

  it('aborts on an error and rethrows the original, leaving the repository as it was', async () => {
    const before = await snapshotTree(repo.root)
    const backend = await open()
    const original = new VerificationError('the image lied', {code: 'E_TEST_LIE'})
    try {
      await repo.clearCalls()
      await expect(
        backend.change([`${top}/a/file`], async (root) => {
          await writeFile(join(root, top, 'a', 'file'), 'changed\n')
          throw original
        }),
      ).rejects.toBe(original)
      expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name}/${top}/a => 0`, `abort -f ${repo.name} => 0`])
    } finally {
      await backend.close()
    }
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
  })
})

describe('the ingest tar stream', () => {
  it('carries modes, owners, symlinks, hardlinks, devices, FIFOs and binary xattrs into the repository', async () => {
    const source = join(await mkdtemp(join(tmpdir(), 'cvmfs-oci-pack-')), 'tree')
    await writeRootfs(source, [
      {name: 'bin/', type: 'directory'},
      {name: 'bin/tool', content: 'tool\n', mode: 0o4755, uid: 1000, gid: 1000},
      {name: 'bin/same', type: 'link', linkname: 'bin/tool'},
      {name: 'bin/sh', type: 'symlink', linkname: 'tool'},
      {name: 'bin/ping', content: 'ping\n', mode: 0o755, xattrs: {'security.capability': fileCapability(['cap_net_raw', 'e']), 'user.note': Buffer.from([0, 255, 128])}},
      {name: 'tmp/', type: 'directory', mode: 0o1777},
      {name: 'dev/', type: 'directory'},
      {name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
      {name: 'run/', type: 'directory'},
      {name: 'run/pipe', type: 'fifo', mode: 0o600},
      {name: `long/${'d'.repeat(120)}/${'f'.repeat(150)}`, content: 'long\n'},
      {name: 'naïve/文件', content: 'utf-8\n'},
    ])
    await ingest(repo.name, {tar: {stream: packTree(source, {logger}), base: `${top}/tree`, catalog: true}, keepOwnership: true}, logger)
    const sent = await snapshotTree(source)
    const arrived = await snapshotTree(join(repo.root, top, 'tree'), {exclude: (rel) => rel === '.cvmfscatalog'})
    for (const tree of [sent, arrived]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs
    expect(diffTrees(sent, arrived)).toEqual([])
    expect(arrived.get('bin/same')?.hardlink).toBe(arrived.get('bin/tool')?.hardlink)
    expect(arrived.get('bin/ping')?.xattrs['user.note']).toBe('00ff80')
    await lstat(join(repo.root, top, 'tree', '.cvmfscatalog'))
    await ingest(repo.name, {delete: [top]}, logger)
    await expect(lstat(join(repo.root, top))).rejects.toThrow()
    await rm(dirname(source), {recursive: true, force: true})
  })
})

/**
 * The CVMFS backend's own pieces against a real stratum-0 (from the kit): the
 * cvmfs_server driver's answers, a change scoped to the directory it touches, the fallback
 * when that directory does not exist yet, the original error winning over the abort (an
 * error in the change, and a publish that really fails), and the tar stream of ingest.
 */
import {lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {abortTransaction, ingest, openTransaction, publishTransaction, repositoryStatus} from '../../src/backends/cvmfs-server.js'
import {CvmfsTransactionBackend} from '../../src/backends/cvmfs-transaction.js'
import {packTree} from '../../src/backends/tar-pack.js'
import {ExternalError, VerificationError} from '../../src/errors.js'
import {silentLogger} from '../../src/log.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {exec} from '../helpers/exec.js'
import {writeRootfs} from '../helpers/rootfs.js'
import {fileCapability} from '../helpers/tar.js'
import {requireTools} from '../helpers/tools.js'
import {asPublishedToCvmfs, diffTrees, snapshotTree} from '../helpers/tree.js'

const repo = testRepository('backend')
const saved = {...process.env}
const logger = silentLogger()
const top = 'backend'

beforeAll(async () => {
  requireTools('chattr')
  await repo.start()
  // The driver runs the cvmfs_server on PATH, as the CLI does.
  Object.assign(process.env, repo.env)
})
afterAll(async () => {
  process.env = saved
  await repo.cleanup()
})

const open = () => CvmfsTransactionBackend.open(repo.name, {logger, lockTimeoutMs: 0, mount: join(repo.root, '..'), stateDir: repo.env.CVMFS_OCI_STATE_DIR!})

describe(`the cvmfs_server driver, on the real stratum-0 ${repo.name}`, () => {
  it('reads the server: its files say what cvmfs_server list says, a busy repository, a scope that does not exist', async () => {
    expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: false})
    expect(await repo.listLine()).not.toContain('in transaction')
    expect(await repositoryStatus(`no-such-${repo.name}`, logger)).toEqual({listed: false, inTransaction: false})
    expect(await openTransaction(repo.name, `${top}/missing/below`, logger)).toEqual({status: 'no-such-path'})
    expect(await openTransaction(repo.name, undefined, logger)).toEqual({status: 'opened'})
    try {
      expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: true})
      expect(await repo.listLine()).toContain('in transaction')
      await expect(openTransaction(repo.name, undefined, logger)).rejects.toMatchObject({code: 'E_TRANSACTION_OPEN', exitCode: 6})
    } finally {
      await abortTransaction(repo.name, logger)
    }
    expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: false})
  })
})

describe(`publish and ingest while another process has a file below /cvmfs/${repo.name} open`, () => {
  /** A process that holds `file` open (`>` for writing, `<` for reading) for 1.5 s, then closes it. */
  const holdOpen = (redirect: '<' | '>', file: string) => exec('sh', ['-c', `exec 3${redirect}"$1"; sleep 1.5; exec 3${redirect}&-`, 'sh', file])
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))

  /**
   * Publish the open transaction while `holder` runs (`meanwhile`: what the real engine
   * does then): it must wait for the file to be closed, then publish.
   */
  async function publishWhile(holder: ReturnType<typeof holdOpen>, meanwhile?: () => Promise<void>): Promise<void> {
    try {
      await settle()
      await meanwhile?.()
      const started = Date.now()
      await publishTransaction(repo.name, logger)
      expect(Date.now() - started).toBeGreaterThan(200)
    } catch (error) {
      await abortTransaction(repo.name, logger).catch(() => {})
      throw error
    } finally {
      await holder
    }
    expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: false})
  }

  it('a publish waits for a writer to close its file (cvmfs_server publish refuses meanwhile, keeping the transaction)', async () => {
    expect(await openTransaction(repo.name, undefined, logger)).toMatchObject({status: 'opened'})
    const file = join(repo.root, `${top}-writer`)
    await publishWhile(holdOpen('>', file), async () => {
      // The real engine refuses while the file is open, and leaves the transaction open.
      const refused = await repo.server(['publish', repo.name])
      expect(refused.exitCode).toBe(1)
      expect(refused.stdout + refused.stderr).toContain(`Open writable file descriptors on ${repo.name}`)
      expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: true})
    })
    expect((await lstat(file)).isFile()).toBe(true)
  })

  // For a reader, cvmfs_server asks "Do you want to proceed anyway? (y/N)" on its stdin:
  // given none (end-of-file), it answers no and stops; a publish keeps its transaction, an
  // ingest leaves the one it opened. Both are asked again once the reader has closed its file.
  it('a publish waits for a reader to close its file', async () => {
    const file = join(repo.root, `${top}-read`)
    expect(await openTransaction(repo.name, undefined, logger)).toMatchObject({status: 'opened'})
    await writeFile(file, 'read me\n')
    await publishTransaction(repo.name, logger)
    expect(await openTransaction(repo.name, undefined, logger)).toMatchObject({status: 'opened'})
    await writeFile(`${file}-2`, 'two\n')
    await publishWhile(holdOpen('<', file))
    expect(await readFile(`${file}-2`, 'utf8')).toBe('two\n')
  })

  it('an ingest waits for the reader, leaves no transaction, then ingests', async () => {
    const source = await mkdtemp(join(tmpdir(), 'cvmfs-oci-ingest-read-'))
    await writeFile(join(source, 'inside'), 'ingested\n')
    // (A file every repository has from its start.)
    const holder = holdOpen('<', join(repo.root, 'new_repository'))
    try {
      await settle()
      const started = Date.now()
      await ingest(repo.name, {tar: {open: () => packTree(source, {logger}), base: `${top}-read-tree`}}, logger)
      expect(Date.now() - started).toBeGreaterThan(200)
    } finally {
      await holder
      await rm(source, {recursive: true, force: true})
    }
    expect(await repositoryStatus(repo.name, logger)).toEqual({listed: true, inTransaction: false})
    expect(await readFile(join(repo.root, `${top}-read-tree`, 'inside'), 'utf8')).toBe('ingested\n')
  })
})

describe('the transaction backend', () => {
  it('scopes a change to the deepest path holding what it touches, whose parent exists', async () => {
    const backend = await open()
    try {
      await repo.clearCalls()
      // Nothing under `top` exists yet: the scope walks up to `top`, whose parent (the root) exists.
      await backend.change([`${top}/a/file`], async (root) => {
        await mkdir(join(root, top, 'a'), {recursive: true})
        await writeFile(join(root, top, 'a', 'file'), 'one\n')
      })
      await backend.change([`${top}/a/file`, `${top}/a/other`], async (root) => writeFile(join(root, top, 'a', 'other'), 'two\n'))
      // A change that writes nothing publishes nothing.
      await backend.change([`${top}/a/other`], async (root) => void (await readFile(join(root, top, 'a', 'other'))))
      expect(changeCalls(await repo.calls())).toEqual([
        `transaction ${repo.name}/${top} => 0`,
        `publish ${repo.name} => 0`,
        `transaction ${repo.name}/${top}/a => 0`,
        `publish ${repo.name} => 0`,
        `transaction ${repo.name}/${top}/a/other => 0`,
        `abort -f ${repo.name} => 0`,
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
      expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name}/${top}/a/file => 0`, `abort -f ${repo.name} => 0`])
    } finally {
      await backend.close()
    }
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
  })
})

describe('a publish that fails', () => {
  it('is aborted; the publish error is what the caller gets, and the repository is as it was', async () => {
    const before = await snapshotTree(repo.root)
    const txn = join('/srv/cvmfs', repo.name, 'data', 'txn')
    const backend = await open()
    try {
      await repo.clearCalls()
      // The repository's storage takes no new objects: cvmfs_server publish fails for real.
      const failing = backend.change([`${top}/a/file`], async (root) => {
        await writeFile(join(root, top, 'a', 'file'), 'never published\n')
        await exec('chattr', ['+i', txn])
      })
      await expect(failing).rejects.toBeInstanceOf(ExternalError)
      await expect(failing).rejects.toMatchObject({code: 'E_EXTERNAL', commandExitCode: 1, stderrTail: expect.stringContaining('Synchronization failed')})
    } finally {
      await exec('chattr', ['-i', txn])
      await backend.close()
    }
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name}/${top}/a/file => 0`, `publish ${repo.name} => 1`, `abort -f ${repo.name} => 0`])
    expect(await repo.listLine()).not.toContain('in transaction')
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
  })
})

describe('the ingest tar stream', () => {
  it('carries modes, owners, symlinks, devices, FIFOs, long names and its base directory into the repository; hardlinks split, no xattrs', async () => {
    const source = join(await mkdtemp(join(tmpdir(), 'cvmfs-oci-pack-')), 'tree')
    await writeRootfs(source, [
      {name: './', type: 'directory', mode: 0o750, uid: 1000, gid: 1000},
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
      {name: 'sub/', type: 'directory'},
      {name: 'sub/.cvmfscatalog', content: ''},
      {name: `long/${'d'.repeat(120)}/${'f'.repeat(150)}`, content: 'long\n'},
      {name: 'naïve/文件', content: 'utf-8\n'},
    ])
    await ingest(repo.name, {tar: {open: () => packTree(source, {logger}), base: `${top}/tree`}, keepOwnership: true}, logger)
    const sent = asPublishedToCvmfs(await snapshotTree(source))
    const arrived = await snapshotTree(join(repo.root, top, 'tree'))
    // What ingest cannot carry: the two names of bin/tool are two files now, and bin/ping has no xattrs.
    expect(diffTrees(sent, asPublishedToCvmfs(arrived))).toEqual(['bin/ping: xattr security.capability 0100000200200000000000000000000000000000 != (none)', 'bin/ping: xattr user.note 00ff80 != (none)'])
    expect(arrived.get('bin/same')?.hardlink).toBeUndefined()
    expect(await stat(join(repo.root, top, 'tree'))).toMatchObject({uid: 1000, gid: 1000, mode: 0o40750}) // its ./ entry
    expect((await exec('cvmfs_server', ['list-catalogs', repo.name])).stdout).toContain(`/${top}/tree/sub\n`)
    await ingest(repo.name, {delete: [top]}, logger)
    await expect(lstat(join(repo.root, top))).rejects.toThrow()
    await rm(dirname(source), {recursive: true, force: true})
  })

  it('refuses to ask ingest -d for a path with ":" (it would silently stay)', async () => {
    await expect(ingest(repo.name, {delete: ['registry:5000/app:1']}, logger)).rejects.toMatchObject({code: 'E_BUG'})
  })
})

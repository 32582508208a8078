/**
 * The cvmfs_server the backend tests run against answers as ../shared/docs/cvmfs-server.md
 * records a CernVM-FS 2.12 stratum-0 answering: messages, exit codes, a read-only
 * /cvmfs/NAME outside transactions, publish and abort, ingest. By default this checks
 * the stand-in (test/cvmfs-server/cvmfs_server); with CVMFS_OCI_TEST_REPO the very same
 * checks run against a real stratum-0, which is how the stand-in is kept honest.
 */
import {lstat, mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {testRepository, type TestRepository} from '../helpers/cvmfs.js'
import {execBuffer} from '../helpers/exec.js'

let repo: TestRepository
const ok = async (args: string[]) => {
  const result = await repo.server(args)
  expect(result.exitCode, `cvmfs_server ${args.join(' ')}:\n${result.stderr}${result.stdout}`).toBe(0)
  return result
}
const isReadOnly = async () =>
  writeFile(join(repo.root, 'probe'), 'x').then(
    async () => {
      await rm(join(repo.root, 'probe'))
      return false
    },
    (error: NodeJS.ErrnoException) => error.code === 'EROFS',
  )

beforeAll(async () => {
  repo = await testRepository()
})
afterAll(async () => {
  // Never leave a transaction open for the next file (a real repository is shared).
  await repo.server(['abort', '-f', repo.name])
  await repo.cleanup()
})

describe('cvmfs_server as the backends meet it', () => {
  it('keeps /cvmfs/NAME read-only outside a transaction, writable inside one', async () => {
    expect(await isReadOnly()).toBe(true)
    await ok(['transaction', repo.name])
    expect(await isReadOnly()).toBe(false)
    const list = await ok(['list'])
    expect(list.stdout).toMatch(new RegExp(`^${repo.name.replaceAll('.', '\\.')} \\(stratum0 / \\w+ - in transaction\\)`, 'm'))
    await ok(['abort', '-f', repo.name])
    expect(await isReadOnly()).toBe(true)
    expect((await ok(['list'])).stdout).not.toMatch(/in transaction/)
  })

  it('refuses a second transaction (17), publish and abort outside one (1, 22), a missing sub-path (2)', async () => {
    await ok(['transaction', repo.name])
    const second = await repo.server(['transaction', repo.name])
    expect(second.exitCode).toBe(17)
    expect(second.stderr + second.stdout).toContain('CernVM-FS transaction error: another transaction is already open')
    const ingest = await repo.server(['ingest', '-d', 'nothing', repo.name])
    expect(ingest.exitCode).toBe(1)
    expect(ingest.stderr + ingest.stdout).toContain('Impossible to start a transaction')
    await ok(['abort', '-f', repo.name])

    const publish = await repo.server(['publish', repo.name])
    expect(publish.exitCode).toBe(1)
    expect(publish.stderr + publish.stdout).toContain(`Repository ${repo.name} is not in a transaction`)
    const abort = await repo.server(['abort', '-f', repo.name])
    expect(abort.exitCode).toBe(22)
    expect(abort.stderr + abort.stdout).toContain(`Repository ${repo.name} is not in a transaction`)
    const sub = await repo.server(['transaction', `${repo.name}/no/such/dir`])
    expect(sub.exitCode).toBe(2)
    expect(sub.stderr + sub.stdout).toContain('cannot open transaction on non-existing path /no/such/dir')
    expect((await ok(['list'])).stdout).not.toMatch(/in transaction/)
  })

  it('publishes what the transaction wrote, deletions and replaced directories included; abort discards', async () => {
    const top = `standin-${Date.now()}`
    await ok(['transaction', repo.name])
    await mkdir(join(repo.root, top, 'dir'), {recursive: true})
    await writeFile(join(repo.root, top, 'dir', 'old'), 'old\n')
    await writeFile(join(repo.root, top, 'file'), 'v1\n')
    await ok(['publish', repo.name])
    expect(await readFile(join(repo.root, top, 'file'), 'utf8')).toBe('v1\n')

    // Scoped to an existing sub-path; the directory is replaced, the file rewritten.
    await ok(['transaction', `${repo.name}/${top}`])
    await rm(join(repo.root, top, 'dir'), {recursive: true})
    await mkdir(join(repo.root, top, 'dir'))
    await writeFile(join(repo.root, top, 'dir', 'new'), 'new\n')
    await writeFile(join(repo.root, top, 'file'), 'v2\n')
    await ok(['publish', repo.name])
    expect(await readFile(join(repo.root, top, 'dir', 'new'), 'utf8')).toBe('new\n')
    await expect(lstat(join(repo.root, top, 'dir', 'old'))).rejects.toThrow()
    expect(await readFile(join(repo.root, top, 'file'), 'utf8')).toBe('v2\n')

    await ok(['transaction', repo.name])
    await rm(join(repo.root, top, 'file'))
    await writeFile(join(repo.root, top, 'junk'), 'x')
    await ok(['abort', '-f', repo.name])
    expect(await readFile(join(repo.root, top, 'file'), 'utf8')).toBe('v2\n')
    await expect(lstat(join(repo.root, top, 'junk'))).rejects.toThrow()

    await ok(['ingest', '-d', top, repo.name])
    await expect(lstat(join(repo.root, top))).rejects.toThrow()
  })

  it('ingests a tar from stdin below a base directory, with --catalog and -k, as its own publish', async () => {
    const base = `standin-ingest-${Date.now()}/root`
    const archive = await execBuffer('tar', ['-c', '-f', '-', '--owner=1234', '--group=4321', '-C', '/bin', 'busybox'])
    const result = await repo.server(['ingest', '--catalog', '-t', '-', '-b', base, '-k', repo.name], {input: archive})
    expect(result.exitCode, result.stderr).toBe(0)
    const info = await lstat(join(repo.root, base, 'busybox'))
    expect([info.uid, info.gid, info.mode & 0o7777]).toEqual([1234, 4321, 0o755])
    await lstat(join(repo.root, base, '.cvmfscatalog'))
    expect(await isReadOnly()).toBe(true)
    await ok(['ingest', '-d', base.split('/')[0]!, repo.name])
  })

  it('treats ingest --help as no parameters, exiting 0', async () => {
    const help = await repo.server(['ingest', '--help'])
    expect(help.exitCode).toBe(0)
    expect(help.stdout + help.stderr).toContain('Please provide some parameters')
  })

  it('logs every call with its exit code', async () => {
    await repo.clearCalls()
    await repo.server(['publish', repo.name])
    expect(await repo.calls()).toEqual([{args: ['publish', repo.name], exitCode: 1}])
  })
})

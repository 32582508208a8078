/**
 * The real `cvmfs_server` (CernVM-FS 2.12, from the kit in ../shared/testbed) as the
 * backends meet it: the messages and exit codes src/backends/cvmfs-server.ts reads, and
 * the behaviours the backends work around or README states (ingest drops xattrs and makes
 * up directories owned by 4294967295, `ingest -d` cannot name a path with `:`, hardlinks
 * split at publish, xattr values above 255 bytes lost, devices and FIFOs kept unless
 * CVMFS_IGNORE_SPECIAL_FILES=true). Checked here so that a CernVM-FS that behaves
 * otherwise is noticed, not just assumed.
 */
import {link, lstat, mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {testRepository} from '../helpers/cvmfs.js'
import {exec, execBuffer} from '../helpers/exec.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const repo = testRepository('server')
const work = useTempDir('cvmfs-oci-server-', 'all')
const ok = async (args: string[], input?: Buffer) => {
  const result = await repo.server(args, {input})
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
/** A tar (GNU tar, numeric owners) of `dir`'s contents, `./` first. */
const tarOf = (dir: string, ...flags: string[]) => execBuffer('tar', ['-c', '-f', '-', '--numeric-owner', ...flags, '-C', dir, '.'])
let serial = 0
/** A fresh directory of files to pack. */
async function tree(files: Record<string, string>): Promise<string> {
  const dir = join(work(), `tree-${++serial}`)
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), {recursive: true})
    await writeFile(join(dir, name), content)
  }
  return dir
}

beforeAll(async () => {
  requireTools('tar', 'getfattr', 'setfattr', 'chattr')
  await repo.start()
})
afterAll(async () => {
  await repo.cleanup()
})

describe(`the real cvmfs_server, on ${repo.name}`, () => {
  it('keeps /cvmfs/NAME read-only outside a transaction, writable inside one', async () => {
    expect(await isReadOnly()).toBe(true)
    await ok(['transaction', repo.name])
    expect(await isReadOnly()).toBe(false)
    expect(await repo.listLine()).toBe(`${repo.name} (stratum0 / local - in transaction)`)
    await ok(['abort', '-f', repo.name])
    expect(await isReadOnly()).toBe(true)
    expect(await repo.listLine()).toBe(`${repo.name} (stratum0 / local)`)
  })

  it('answers a second transaction (17), ingest in a transaction (1), publish and abort outside one (1, 22), a missing scope (2)', async () => {
    await ok(['transaction', repo.name])
    const second = await repo.server(['transaction', repo.name])
    expect(second.exitCode).toBe(17)
    expect(second.stderr + second.stdout).toContain('CernVM-FS transaction error: another transaction is already open')
    const ingest = await repo.server(['ingest', '-d', 'nothing', repo.name])
    expect(ingest.exitCode).toBe(1)
    expect(ingest.stderr + ingest.stdout).toContain('another transaction is already open')
    expect(ingest.stderr + ingest.stdout).toContain('Impossible to start a transaction')
    await ok(['abort', '-f', repo.name])

    const publish = await repo.server(['publish', repo.name])
    expect(publish.exitCode).toBe(1)
    expect(publish.stderr + publish.stdout).toContain(`Repository ${repo.name} is not in a transaction`)
    const abort = await repo.server(['abort', '-f', repo.name])
    expect(abort.exitCode).toBe(22)
    expect(abort.stderr + abort.stdout).toContain(`Repository ${repo.name} is not in a transaction`)
    // Only the scope's parent must exist; the message names the first missing directory's parent chain.
    const missing = await repo.server(['transaction', `${repo.name}/no/such/dir`])
    expect({exitCode: missing.exitCode, stdout: missing.stdout, stderr: missing.stderr}).toEqual({
      exitCode: 2,
      stdout: '',
      stderr: 'CernVM-FS transaction error: cannot open transaction on non-existing path /no/such\n',
    })
    await ok(['transaction', `${repo.name}/newdir`]) // its parent, the root, exists
    await ok(['abort', '-f', repo.name])
    expect(await repo.listLine()).not.toContain('in transaction')
  })

  it('treats ingest --help as no parameters: exit 1, one line on stderr', async () => {
    const help = await repo.server(['ingest', '--help'])
    expect(help.exitCode).toBe(1)
    expect(help.stdout).toBe('')
    expect(help.stderr).toContain(
      'Please provide some parameters, use -t $TAR_FILE to provide the tar to extract -b $BASE_DIR to provide where to extract the tar and -d $TO_DELETE to provide what to delete from the repository',
    )
  })

  it('publishes what a transaction wrote, deletions and replaced directories included; abort discards', async () => {
    const top = 'published'
    await ok(['transaction', repo.name])
    await mkdir(join(repo.root, top, 'dir'), {recursive: true})
    await writeFile(join(repo.root, top, 'dir', 'old'), 'old\n')
    await writeFile(join(repo.root, top, 'file'), 'v1\n')
    await ok(['publish', repo.name])
    expect(await readFile(join(repo.root, top, 'file'), 'utf8')).toBe('v1\n')

    await ok(['transaction', `${repo.name}/${top}`])
    await rm(join(repo.root, top, 'dir'), {recursive: true})
    await mkdir(join(repo.root, top, 'dir'))
    await writeFile(join(repo.root, top, 'dir', 'new'), 'new\n')
    await writeFile(join(repo.root, top, 'file'), 'v2\n')
    await ok(['publish', repo.name])
    expect(await readFile(join(repo.root, top, 'dir', 'new'), 'utf8')).toBe('new\n')
    await expect(lstat(join(repo.root, top, 'dir', 'old'))).rejects.toThrow()

    await ok(['transaction', repo.name])
    await rm(join(repo.root, top, 'file'))
    await writeFile(join(repo.root, top, 'junk'), 'x')
    await ok(['abort', '-f', repo.name])
    expect(await readFile(join(repo.root, top, 'file'), 'utf8')).toBe('v2\n')
    await expect(lstat(join(repo.root, top, 'junk'))).rejects.toThrow()
  })

  it('fails a publish whose storage takes no new objects (exit 1), and stays in the transaction until abort -f', async () => {
    const txn = join('/srv/cvmfs', repo.name, 'data', 'txn')
    await ok(['transaction', repo.name])
    await writeFile(join(repo.root, 'unpublishable'), 'x\n')
    await exec('chattr', ['+i', txn])
    let publish
    try {
      publish = await repo.server(['publish', repo.name])
    } finally {
      await exec('chattr', ['-i', txn])
    }
    expect(publish.exitCode).toBe(1)
    expect(publish.stderr).toContain('Synchronization failed')
    expect(await repo.listLine()).toContain('in transaction')
    await ok(['abort', '-f', repo.name])
    await expect(lstat(join(repo.root, 'unpublishable'))).rejects.toThrow()
  })

  it('keeps device nodes and FIFOs published in transactions, unless CVMFS_IGNORE_SPECIAL_FILES=true drops them', async () => {
    const conf = join('/etc/cvmfs/repositories.d', repo.name, 'server.conf')
    const setting = async (value: boolean) =>
      writeFile(conf, (await readFile(conf, 'utf8')).replace(/^CVMFS_IGNORE_SPECIAL_FILES=.*$/m, `CVMFS_IGNORE_SPECIAL_FILES=${value}`))
    const special = async (dir: string) => {
      await ok(['transaction', repo.name])
      await mkdir(join(repo.root, dir))
      await exec('mknod', [join(repo.root, dir, 'null'), 'c', '1', '3'])
      await exec('mknod', [join(repo.root, dir, 'loop9'), 'b', '7', '9'])
      await exec('mkfifo', [join(repo.root, dir, 'pipe')])
      await ok(['publish', repo.name])
      return (await readdir(join(repo.root, dir))).sort()
    }
    expect(await special('special-kept')).toEqual(['loop9', 'null', 'pipe'])
    expect((await stat(join(repo.root, 'special-kept', 'null'))).rdev).toBe(0x103)
    try {
      await setting(true)
      expect(await special('special-dropped')).toEqual([])
    } finally {
      await setting(false)
    }
  })

  it('splits every hardlink at publish, within one directory too', async () => {
    await ok(['transaction', repo.name])
    await mkdir(join(repo.root, 'links', 'd1'), {recursive: true})
    await mkdir(join(repo.root, 'links', 'd2'))
    await writeFile(join(repo.root, 'links', 'd1', 'a'), 'same\n')
    await link(join(repo.root, 'links', 'd1', 'a'), join(repo.root, 'links', 'd1', 'b'))
    await link(join(repo.root, 'links', 'd1', 'a'), join(repo.root, 'links', 'd2', 'c'))
    expect((await stat(join(repo.root, 'links', 'd1', 'a'))).nlink).toBe(3)
    await ok(['publish', repo.name])
    const published = await Promise.all(['d1/a', 'd1/b', 'd2/c'].map((p) => stat(join(repo.root, 'links', p))))
    expect(published.map((s) => s.nlink)).toEqual([1, 1, 1])
    expect(new Set(published.map((s) => s.ino)).size).toBe(3)
  })

  it('keeps xattrs in transactions (values up to 255 bytes), drops them from ingested tars', async () => {
    const value = (n: number) => 'v'.repeat(n)
    await ok(['transaction', repo.name])
    await mkdir(join(repo.root, 'xattrs'))
    for (const n of [255, 256, 257]) {
      await writeFile(join(repo.root, 'xattrs', `v${n}`), 'x\n')
      await exec('setfattr', ['-n', 'user.v', '-v', value(n), join(repo.root, 'xattrs', `v${n}`)])
    }
    await ok(['publish', repo.name])
    const read = (file: string) => exec('getfattr', ['-n', 'user.v', '--only-values', join(repo.root, 'xattrs', file)], {reject: false})
    expect((await read('v255')).stdout).toBe(value(255))
    expect(await read('v256')).toMatchObject({exitCode: 0, stdout: ''}) // kept, emptied
    expect((await read('v257')).stderr).toContain('No such attribute')

    const source = await tree({ping: 'ping\n'})
    await exec('setfattr', ['-n', 'user.note', '-v', 'hello', join(source, 'ping')])
    await exec('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', join(source, 'ping')])
    // GNU tar's PAX SCHILY.xattr.* records carry both; ingest ignores them.
    await ok(['ingest', '-t', '-', '-b', 'ingested-xattrs', '-k', repo.name], await tarOf(source, '--xattrs', '--xattrs-include=*'))
    expect(await readFile(join(repo.root, 'ingested-xattrs', 'ping'), 'utf8')).toBe('ping\n')
    expect((await exec('getfattr', ['-d', '-m', '-', join(repo.root, 'ingested-xattrs', 'ping')])).stdout).toBe('')
  })

  it('ingests below a base: owners with -k, nested catalogs from .cvmfscatalog files, the base from its ./ entry', async () => {
    const source = await tree({'bin/tool': 'tool\n', 'sub/.cvmfscatalog': ''})
    await exec('chown', ['-R', '1234:4321', source])
    const result = await repo.server(['ingest', '-t', '-', '-b', 'ingested/base', '-k', repo.name], {input: await tarOf(source)})
    expect(result.exitCode, result.stderr).toBe(0)
    expect(await isReadOnly()).toBe(true)
    const owner = async (rel: string) => {
      const info = await stat(join(repo.root, rel))
      return `${info.uid}:${info.gid}`
    }
    expect(await owner('ingested/base/bin/tool')).toBe('1234:4321')
    expect(await owner('ingested/base')).toBe('1234:4321') // from the tar's ./ entry
    // The missing parent of the base is made up, owned by 4294967295, which the kernel shows as 65534.
    expect(await owner('ingested')).toBe('65534:65534')
    expect((await exec('cvmfs_server', ['list-catalogs', repo.name])).stdout).toContain('/ingested/base/sub\n')
    // No overlay copies such a directory up: a transaction cannot write into it.
    await ok(['transaction', repo.name])
    try {
      await expect(writeFile(join(repo.root, 'ingested', 'new'), 'x')).rejects.toMatchObject({code: 'EACCES'})
    } finally {
      await ok(['abort', '-f', repo.name])
    }
  })

  it('makes up the root of a nested catalog that an ingest starts in an existing directory without an entry for it', async () => {
    await ok(['ingest', '-t', '-', '-b', 'nested', '-k', repo.name], await tarOf(await tree({'file': 'x\n'})))
    expect((await stat(join(repo.root, 'nested'))).uid).toBe(0)
    const marker = await tree({'.cvmfscatalog': ''})
    await ok(['ingest', '-t', '-', '-b', 'nested', '-k', repo.name], await execBuffer('tar', ['-c', '-f', '-', '-C', marker, '.cvmfscatalog']))
    expect((await stat(join(repo.root, 'nested'))).uid).toBe(65534)
    // With its ./ entry in the same tar, it stays as it was.
    await ok(['ingest', '-t', '-', '-b', 'nested-too', '-k', repo.name], await tarOf(await tree({'file': 'x\n'})))
    await ok(['ingest', '-t', '-', '-b', 'nested-too', '-k', repo.name], await tarOf(marker))
    expect((await stat(join(repo.root, 'nested-too'))).uid).toBe(0)
    expect((await exec('cvmfs_server', ['list-catalogs', repo.name])).stdout).toContain('/nested-too\n')
  })

  it('ingest -d deletes nothing, silently, when the path has a ":" (it splits its paths at ":")', async () => {
    await ok(['ingest', '-t', '-', '-b', 'registry:5000', '-k', repo.name], await tarOf(await tree({'app:1/file': 'x\n', 'plain/file': 'y\n'})))
    await ok(['ingest', '-d', 'registry:5000/app:1', repo.name])
    await lstat(join(repo.root, 'registry:5000', 'app:1', 'file'))
    await ok(['ingest', '-t', '-', '-b', 'plain-top', '-k', repo.name], await tarOf(await tree({'file': 'z\n'})))
    await ok(['ingest', '-d', 'plain-top', repo.name])
    await expect(lstat(join(repo.root, 'plain-top'))).rejects.toThrow()
  })

  it('logs every call with its exit code, and runs a hook before the calls of one verb', async () => {
    await repo.clearCalls()
    await repo.server(['publish', repo.name])
    expect(await repo.calls()).toEqual([{args: ['publish', repo.name], exitCode: 1}])
    await repo.clearCalls()
    const hooked = await exec('cvmfs_server', ['list'], {env: {...repo.env, CVMFS_SERVER_HOOK_VERB: 'list', CVMFS_SERVER_HOOK: 'exit 42'}, reject: false})
    expect(hooked.exitCode).toBe(42)
    expect(await repo.calls()).toEqual([{args: ['list'], exitCode: 42}])
  })
})

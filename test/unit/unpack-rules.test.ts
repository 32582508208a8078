import {mkdtemp, readFile, rm, symlink, writeFile, mkdir, lstat, readlink} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {exec} from '../helpers/exec.js'
import {requireTools} from '../helpers/tools.js'
import {addMountPoints} from '../../src/layout/mount-points.js'
import {silentLogger} from '../../src/log.js'
import {classifyWhiteout, entryComponents} from '../../src/unpack/entry-path.js'
import {sniffCompression} from '../../src/unpack/layer-source.js'
import {applyXattrs, quotePath, restoreDump} from '../../src/unpack/xattrs.js'

describe('entry names', () => {
  it.each([
    ['etc/passwd', ['etc', 'passwd']],
    ['./etc//passwd', ['etc', 'passwd']],
    ['./', []],
    ['', []],
    ['usr/lib/', ['usr', 'lib']],
    ['a/./b', ['a', 'b']],
    ['données/ü', ['données', 'ü']],
  ])('%j → %j', (name, expected) => {
    expect(entryComponents(name, '1/1')).toEqual(expected)
  })

  it.each([
    ['../x', 'E_HOSTILE_TRAVERSAL'],
    ['a/../../x', 'E_HOSTILE_TRAVERSAL'],
    ['a/..', 'E_HOSTILE_TRAVERSAL'],
    ['/etc/passwd', 'E_HOSTILE_ABSOLUTE'],
    ['a\0b', 'E_HOSTILE_NUL'],
  ])('%j is refused with %s', (name, code) => {
    expect(() => entryComponents(name, '1/1')).toThrow(expect.objectContaining({code, exitCode: 4}))
  })
})

describe('whiteouts', () => {
  it.each([
    ['.wh..wh..opq', {kind: 'opaque'}],
    ['.wh.passwd', {kind: 'whiteout', target: 'passwd'}],
    ['.wh..hidden', {kind: 'whiteout', target: '.hidden'}],
    ['.wh.', {kind: 'invalid'}],
    ['.wh..', {kind: 'invalid'}],
    ['.wh...', {kind: 'invalid'}],
    ['passwd', {kind: 'none'}],
    ['x.wh.y', {kind: 'none'}],
  ])('%j is %j', (base, expected) => {
    expect(classifyWhiteout(base)).toEqual(expected)
  })
})

describe('compression sniffing', () => {
  it.each([
    [Buffer.from([0x1f, 0x8b, 8, 0]), 'gzip'],
    [Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), 'zstd'],
    [Buffer.from('etc/'), 'none'],
    [Buffer.alloc(0), 'none'],
  ])('%o is %s', (head, expected) => {
    expect(sniffCompression(head)).toBe(expected)
  })
})

describe('extended attributes', () => {
  it('quotes paths the way setfattr --restore unquotes them', () => {
    expect(quotePath('/a b/c=d\\e\nf')).toBe('/a\\040b/c\\075d\\134e\\012f')
    expect(quotePath('/ü')).toBe('/\\303\\274')
    expect(restoreDump(new Map([['/x', new Map([['user.a', Buffer.from([0, 0x80, 0xff])]])]]))).toBe('# file: /x\nuser.a=0x0080ff\n')
  })

  it('applies binary values to awkward file names with one real setfattr run', async () => {
    requireTools('setfattr', 'getfattr')
    const dir = await mkdtemp(join(tmpdir(), 'cvmfs-oci-xattr-'))
    try {
      const files = ['plain', 'with space', 'equals=sign', 'back\\slash', 'naïve', 'new\nline'].map((n) => join(dir, n))
      for (const file of files) await writeFile(file, '')
      const value = Buffer.from([0x01, 0x00, 0x80, 0xff, 0x0a, 0x3d])
      await applyXattrs(new Map(files.map((f) => [f, new Map([['user.test', value]])])), dir, silentLogger())
      for (const file of files) {
        const {stdout} = await exec('getfattr', ['--absolute-names', '-n', 'user.test', '-e', 'hex', file])
        expect(stdout, file).toContain(`user.test=0x${value.toString('hex')}`)
      }
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

describe('mount points', () => {
  it("adds what is missing and never replaces the image's own files, nor writes through its symlinks", async () => {
    const root = await mkdtemp(join(tmpdir(), 'cvmfs-oci-mp-'))
    try {
      await mkdir(join(root, 'etc'))
      await writeFile(join(root, 'etc/hosts'), 'image hosts\n')
      await symlink('/proc/mounts', join(root, 'etc/mtab'))
      await symlink('/elsewhere', join(root, 'run'))
      const added = await addMountPoints(root)
      expect(added).toEqual(expect.arrayContaining(['proc', 'sys', 'dev', 'tmp', 'var/tmp', 'etc/resolv.conf', 'etc/passwd']))
      expect(added).not.toContain('etc/hosts')
      expect(added).not.toContain('etc/mtab')
      expect(added).not.toContain('run/.containerenv')
      expect(await readFile(join(root, 'etc/hosts'), 'utf8')).toBe('image hosts\n')
      expect(await readlink(join(root, 'etc/mtab'))).toBe('/proc/mounts')
      expect((await lstat(join(root, 'var/tmp'))).mode & 0o7777).toBe(0o1777)
      expect(await addMountPoints(root)).toEqual([])
    } finally {
      await rm(root, {recursive: true, force: true})
    }
  })
})

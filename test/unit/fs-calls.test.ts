/**
 * src/fs-calls.ts: the hot paths' file-system calls, through node:fs's
 * callbacks or, once `callSynchronously()` was called, synchronously (resolve), or
 * synchronously until one call is slow (list, gc, rm, hook validate). Either way each call
 * resolves to the same value and rejects with the same error code.
 */
import {mkdirSync, Stats, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it, vi} from 'vitest'

import {useTempDir} from '../helpers/temp-dir.js'

type Calls = typeof import('../../src/fs-calls.js')

/** Every call on a path that is there and on one that is not: values, or error codes. */
async function outcomes(calls: Calls, dir: string): Promise<unknown[]> {
  const settle = (promise: Promise<unknown>) => promise.then(
    (value) => (value instanceof Stats ? {directory: value.isDirectory(), size: value.size} : value),
    (error: NodeJS.ErrnoException) => ({code: error.code}),
  )
  const missing = join(dir, 'missing')
  return Promise.all([
    settle(calls.lstat(join(dir, 'link'))),
    settle(calls.stat(join(dir, 'link'))),
    settle(calls.stat(missing)),
    settle(calls.readlink(join(dir, 'link'))),
    settle(calls.readlink(join(dir, 'file'))),
    settle(calls.realpath(join(dir, 'link'))),
    settle(calls.realpath(missing)),
    settle(calls.readFile(join(dir, 'file'), 'utf8')),
    settle(calls.readFile(missing, 'utf8')),
    settle(calls.readdir(dir).then((names) => names.sort())),
    settle(calls.readdir(dir, {withFileTypes: true}).then((entries) => entries.map((e) => `${e.name} ${e.isDirectory()}`).sort())),
    settle(calls.readdir(dir, {withFileTypes: true, recursive: true}).then((entries) => entries.map((e) => `${e.parentPath}/${e.name}`).sort())),
    settle(calls.readdir(missing)),
    settle(calls.access(join(dir, 'file'), calls.constants.R_OK)),
    settle(calls.access(missing, calls.constants.R_OK)),
    settle(calls.mkdir(join(dir, 'sub'))),
    settle(calls.writeFile(join(dir, 'file'), 'again', {flag: 'wx'})),
    settle(calls.symlink('file', join(dir, 'link'))),
    settle(calls.chmod(missing, 0o644)),
  ])
}

describe('fs-calls', () => {
  const dir = useTempDir('cvmfs-oci-fs-calls-', 'each')

  const prepare = (at: string) => {
    mkdirSync(join(at, 'sub'), {recursive: true})
    writeFileSync(join(at, 'sub', 'inner'), '')
    writeFileSync(join(at, 'file'), 'content')
    symlinkSync('file', join(at, 'link'))
    return at
  }

  /** Every outcome with a fresh module asynchronously, and with `mode` set on another one. */
  const bothWays = async (mode: (calls: Calls) => void) => {
    vi.resetModules()
    const asynchronous = (await import('../../src/fs-calls.js')) as Calls
    const a = await outcomes(asynchronous, prepare(join(dir(), 'a')))
    vi.resetModules()
    const other = (await import('../../src/fs-calls.js')) as Calls
    mode(other)
    const o = await outcomes(other, prepare(join(dir(), 'o')))
    const normalized = (list: unknown[], at: string) => JSON.parse(JSON.stringify(list).replaceAll(join(dir(), at), 'DIR')) as unknown[]
    return {asynchronous: normalized(a, 'a'), other: normalized(o, 'o'), stillSynchronous: other.callsSynchronously()}
  }

  it('gives the same values and errors asynchronously and synchronously', async () => {
    const {asynchronous, other} = await bothWays((calls) => calls.callSynchronously())
    expect(other).toEqual(asynchronous)
    // And they are what they should be, not merely alike.
    expect(asynchronous).toEqual([
      {directory: false, size: 4},
      {directory: false, size: 7},
      {code: 'ENOENT'},
      'file',
      {code: 'EINVAL'},
      'DIR/file',
      {code: 'ENOENT'},
      'content',
      {code: 'ENOENT'},
      ['file', 'link', 'sub'],
      ['file false', 'link false', 'sub true'],
      ['DIR/file', 'DIR/link', 'DIR/sub', 'DIR/sub/inner'],
      {code: 'ENOENT'},
      null, // access resolves to nothing (null after the JSON round trip above)
      {code: 'ENOENT'},
      {code: 'EEXIST'},
      {code: 'EEXIST'},
      {code: 'EEXIST'},
      {code: 'ENOENT'},
    ])
  })

  it('gives the same values and errors synchronously while calls are fast', async () => {
    // A limit no call here reaches: every call synchronous.
    const {asynchronous, other, stillSynchronous} = await bothWays((calls) => calls.callSynchronously({untilSlowerThanMs: 60_000}))
    expect(stillSynchronous).toBe(true)
    expect(other).toEqual(asynchronous)
    expect(asynchronous).toHaveLength(19)
  })

  it('goes asynchronous for good after a call slower than the limit', async () => {
    vi.resetModules()
    const calls = (await import('../../src/fs-calls.js')) as Calls
    expect(calls.callsSynchronously()).toBe(false)
    calls.callSynchronouslyWhileFast()
    expect(calls.callsSynchronously()).toBe(true)
    vi.resetModules()
    const limited = (await import('../../src/fs-calls.js')) as Calls
    // Every call takes longer than 0 ms: the first is made synchronously, then none.
    limited.callSynchronously({untilSlowerThanMs: 0})
    const file = join(prepare(dir()), 'file')
    await expect(limited.readFile(file, 'utf8')).resolves.toBe('content')
    expect(limited.callsSynchronously()).toBe(false)
    await expect(limited.readFile(file, 'utf8')).resolves.toBe('content')
    await expect(limited.lstat(join(dir(), 'missing'))).rejects.toMatchObject({code: 'ENOENT'})
    expect(limited.callsSynchronously()).toBe(false)
  })

  it('rejects rather than throws when synchronous', async () => {
    vi.resetModules()
    const calls = (await import('../../src/fs-calls.js')) as Calls
    calls.callSynchronously()
    const pending = calls.lstat(join(dir(), 'missing'))
    await expect(pending).rejects.toMatchObject({code: 'ENOENT'})
  })
})

/**
 * src/cli/code-cache.ts: on Node.js without a compile cache of its own (20), a command's
 * bundle is compiled from a V8 code cache kept in $XDG_CACHE_HOME/cvmfs-oci, made when a
 * run exits; it is read only from a directory of this user that no one else may write,
 * and a cache that is stale or damaged is made again, never trusted. On Node.js >= 22.1
 * (module.enableCompileCache) none is written.
 */
import {chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import * as nodeModule from 'node:module'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {codeCacheDir} from '../../src/cli/code-cache.js'
import {cli} from '../helpers/cli.js'
import {useTempDir} from '../helpers/temp-dir.js'

const nodeHasItsOwn = typeof (nodeModule as {enableCompileCache?: unknown}).enableCompileCache === 'function'

describe('codeCacheDir', () => {
  const dir = useTempDir('cvmfs-oci-code-cache-', 'each')

  it('is $XDG_CACHE_HOME/cvmfs-oci, made private', () => {
    const xdg = join(dir(), 'xdg')
    expect(codeCacheDir({XDG_CACHE_HOME: xdg, HOME: join(dir(), 'home')})).toBe(join(xdg, 'cvmfs-oci'))
    expect(statSync(join(xdg, 'cvmfs-oci')).mode & 0o777).toBe(0o700)
  })

  it('else ~/.cache/cvmfs-oci', () => {
    mkdirSync(join(dir(), 'home'))
    expect(codeCacheDir({HOME: join(dir(), 'home')})).toBe(join(dir(), 'home', '.cache', 'cvmfs-oci'))
  })

  it('is none without a home, or with a relative one', () => {
    expect(codeCacheDir({})).toBeUndefined()
    expect(codeCacheDir({XDG_CACHE_HOME: 'relative/cache'})).toBeUndefined()
  })

  it('is none where others may write it', () => {
    const xdg = join(dir(), 'xdg')
    mkdirSync(join(xdg, 'cvmfs-oci'), {recursive: true})
    chmodSync(join(xdg, 'cvmfs-oci'), 0o777)
    expect(codeCacheDir({XDG_CACHE_HOME: xdg})).toBeUndefined()
  })

  it.runIf(process.getuid?.() === 0)("is none in another user's home, and makes nothing there (sudo keeping HOME)", () => {
    const home = join(dir(), 'alice')
    mkdirSync(home)
    chownSync(home, 65534, 65534)
    expect(codeCacheDir({HOME: home})).toBeUndefined()
    expect(existsSync(join(home, '.cache'))).toBe(false)
    mkdirSync(join(home, '.cache', 'cvmfs-oci'), {recursive: true})
    chownSync(join(home, '.cache'), 65534, 65534)
    expect(codeCacheDir({HOME: home})).toBeUndefined()
  })
})

describe('a command run twice', () => {
  const dir = useTempDir('cvmfs-oci-code-cache-run-', 'each')
  const run = async () => {
    mkdirSync(join(dir(), 'repo'), {recursive: true})
    const result = await cli(['list', '--root', join(dir(), 'repo')], {env: {XDG_CACHE_HOME: join(dir(), 'xdg')}})
    expect(result.stderr).toBe('')
    expect(result.exitCode).toBe(0)
    return result.stdout
  }
  const cacheFile = () => join(dir(), 'xdg', 'cvmfs-oci', 'list.cjs.v8-cache')

  it.runIf(!nodeHasItsOwn)('is compiled from the cache its first run left', async () => {
    const first = await run()
    const made = readFileSync(cacheFile())
    const key = made.subarray(0, made.indexOf(0x0a) + 1).toString('utf8')
    expect(key).toMatch(new RegExp(`^${process.version.replaceAll('.', '\\.')} ${process.arch} \\d+ [\\d.]+ \\d+\\n$`))
    expect(made.length).toBeGreaterThan(key.length + 1000)
    const mtime = statSync(cacheFile()).mtimeMs
    expect(await run()).toBe(first)
    // Taken as it was: not made again.
    expect(statSync(cacheFile()).mtimeMs).toBe(mtime)
    expect(readFileSync(cacheFile())).toEqual(made)
  })

  it.runIf(!nodeHasItsOwn)('makes a damaged or stale cache again', async () => {
    const first = await run()
    const made = readFileSync(cacheFile())
    const key = made.subarray(0, made.indexOf(0x0a) + 1)
    /** A run rewrites the cache with the bundle's key and a new cache, which the next run takes as it is. */
    const madeAgain = async (planted: Buffer) => {
      writeFileSync(cacheFile(), planted)
      expect(await run()).toBe(first)
      const now = readFileSync(cacheFile())
      expect(now.equals(planted)).toBe(false)
      expect(now.subarray(0, key.length)).toEqual(key)
      expect(now.length).toBeGreaterThan(key.length + 1000)
      const mtime = statSync(cacheFile()).mtimeMs
      expect(await run()).toBe(first)
      expect(statSync(cacheFile()).mtimeMs).toBe(mtime)
    }
    // Damaged: V8 refuses it.
    await madeAgain(Buffer.concat([key, Buffer.alloc(4096, 0x5a)]))
    // Stale: made for another build of the bundle (its key differs), so never given to V8.
    await madeAgain(Buffer.concat([Buffer.from(`${process.version} ${process.arch} 1 2 3\n`), made.subarray(key.length)]))
  })

  it.runIf(!nodeHasItsOwn)("resolve's bundle is cached the same way", async () => {
    const resolve = () => cli(['resolve', '--root', join(dir(), 'repo'), 'alpine:9.99'], {env: {XDG_CACHE_HOME: join(dir(), 'xdg'), CVMFS_OCI_CONFIG: '/nonexistent/config.json', CVMFS_OCI_ROOTS: ''}})
    mkdirSync(join(dir(), 'repo'), {recursive: true})
    const first = await resolve()
    expect(first.exitCode, first.stderr).toBe(3)
    const cache = join(dir(), 'xdg', 'cvmfs-oci', 'resolve-main.cjs.v8-cache')
    expect(readFileSync(cache).length).toBeGreaterThan(1000)
    const mtime = statSync(cache).mtimeMs
    const second = await resolve()
    expect(second.exitCode).toBe(3)
    expect(second.stderr).toBe(first.stderr)
    expect(statSync(cache).mtimeMs).toBe(mtime)
  })

  it.runIf(nodeHasItsOwn)('leaves the cache to Node.js', async () => {
    await run()
    await run()
    expect(existsSync(join(dir(), 'xdg', 'cvmfs-oci'))).toBe(false)
  })
})

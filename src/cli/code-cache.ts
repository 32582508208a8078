/**
 * A command's bundle (and `resolve`'s) loaded with V8's code cache, where Node.js keeps
 * none of its own: Node.js >= 22.1 caches compiled code itself (module.enableCompileCache,
 * which bin/run.js turns on); Node.js 20 compiles every bundle anew on every run, and
 * parsing the larger ones (sync's holds the publish path and the YAML parser) is most of
 * what a command costs beyond `node -e 0`. Compiling the functions a run calls (V8
 * compiles each at its first call) is the rest: `resolve`'s ~7 M instructions of ~27 M
 * beyond `node -e 0` (callgrind, Node.js 20).
 *
 * The cache is made when the process exits, after the command ran, so that it holds the
 * functions the run compiled as well as the top level (V8's createCachedData after
 * execution), and it is made only when there was none or V8 refused it. It lives in
 * `$XDG_CACHE_HOME/cvmfs-oci` (else `~/.cache/cvmfs-oci`), a directory of this user that
 * no one else may write (a code cache is code: one planted by another user is never
 * read), one file per bundle, headed by the key of the bundle it was made from (its
 * size, mtime and inode, and Node.js's version: V8 itself checks the source's length
 * only). Anything that goes wrong with it (no home, a read-only one) loads the bundle
 * the plain way: the cache only ever saves time.
 */
import {closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, type Stats} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import type {Script} from 'node:vm'

import {vm} from '../builtins.js'

/**
 * What the entry (bin/run.js, CommonJS) hands over: node:module's Module class, as its own
 * `module.constructor` (a CommonJS module is an instance of it), because on Node.js 20
 * `require('node:module')` also loads the ES module loader and source maps, ~5 M
 * instructions (~2 ms) of every start; and whether Node.js caches compiled code itself.
 * (Its node:vm comes through src/builtins.ts, whose `createRequire` is, in a bundle, the
 * bundle's own `require`: scripts/bundle-shims/node-module.mjs.)
 */
export interface Entry {
  Module: ModuleClass
  /** Node.js >= 22.1, where bin/run.js turned on module.enableCompileCache. */
  nodeCaches: boolean
}

/** node:module's Module, as far as a bundle's loading uses it. */
export interface ModuleClass {
  new (id: string): NodeJS.Module
  createRequire(file: string): NodeJS.Require
  _nodeModulePaths?(dir: string): string[]
}

type CommonJsFunction = (exports: unknown, require: NodeJS.Require, module: {exports: unknown}, filename: string, dirname: string) => void

/**
 * The cache directory, made if missing; undefined where it cannot be trusted or made.
 * Every directory on the way that is used or made is this user's, so that a run under
 * sudo with another user's HOME neither reads that user's cache nor leaves directories
 * of its own in their home; the cache's own directory is also writable by no one else.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : undefined)
  if (!base?.startsWith('/')) return undefined
  const dir = join(base, 'cvmfs-oci')
  return ownDirectory(base) && ownDirectory(dir, true) ? dir : undefined
}

/** Whether `path` is (or was made, inside a directory of this user) a directory of this user. */
function ownDirectory(path: string, private_ = false): boolean {
  const uid = process.getuid?.()
  const ours = (at: string, writableByOthers: boolean) => {
    const stat = lstatSync(at, {throwIfNoEntry: false})
    return stat?.isDirectory() === true && stat.uid === uid && (writableByOthers || (stat.mode & 0o022) === 0)
  }
  try {
    if (ours(path, !private_)) return true
    if (lstatSync(path, {throwIfNoEntry: false}) !== undefined || !ours(dirname(path), true)) return false
    mkdirSync(path, {mode: 0o700})
    return ours(path, !private_)
  } catch {
    return false
  }
}

/** `require(file)` of a CommonJS bundle, compiled from the code cache where there is one. */
export function requireBundle(file: string, {Module, nodeCaches}: Entry): unknown {
  const dir = nodeCaches ? undefined : codeCacheDir()
  if (!dir) return Module.createRequire(file)(file)
  // The source and the key from one open file: a bundle replaced meanwhile (an upgrade
  // renames new files into place) cannot give its key to the other one's code.
  const fd = openSync(file, 'r')
  let source: string
  let stat: Stats
  try {
    stat = fstatSync(fd)
    source = readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
  const key = `${process.version} ${process.arch} ${stat.size} ${stat.mtimeMs} ${stat.ino}\n`
  const cacheFile = join(dir, `${basename(file)}.v8-cache`)
  const cachedData = readCache(cacheFile, key)
  // The wrapper Node.js puts around a CommonJS module, on the source's first line.
  // node:vm only here: `--version`, which loads no bundle, does without it.
  const script = new (vm().Script)(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {filename: file, cachedData})
  if (!cachedData || script.cachedDataRejected) process.once('exit', () => writeCache(cacheFile, key, script))
  // A module like any other CommonJS one: in require's cache, with its search paths.
  const module = new Module(file)
  const require = Module.createRequire(file)
  module.filename = file
  module.paths = Module._nodeModulePaths?.(dirname(file)) ?? []
  require.cache[file] = module
  try {
    ;(script.runInThisContext() as CommonJsFunction).call(module.exports, module.exports, require, module, file, dirname(file))
  } catch (error) {
    delete require.cache[file]
    throw error
  }
  module.loaded = true
  return module.exports
}

function readCache(cacheFile: string, key: string): Buffer | undefined {
  try {
    const bytes = readFileSync(cacheFile)
    return bytes.subarray(0, key.length).toString('utf8') === key ? bytes.subarray(key.length) : undefined
  } catch {
    return undefined
  }
}

/** Written whole or not at all (a run reading it meanwhile sees the old file or the new one). */
function writeCache(cacheFile: string, key: string, script: Script): void {
  const temp = `${cacheFile}.${process.pid}`
  try {
    writeFileSync(temp, Buffer.concat([Buffer.from(key, 'utf8'), script.createCachedData()]), {mode: 0o600})
    renameSync(temp, cacheFile)
  } catch {
    try {
      unlinkSync(temp)
    } catch {
      // nothing was written
    }
  }
}

/**
 * The asynchronous file-system calls of the layout's readers (resolve, list, links,
 * mount points), made through node:fs rather than node:fs/promises. `resolve` runs
 * before every container start, and loading node:fs/promises loads Node.js's stream
 * modules with it (~2 ms on Node.js 20), for nothing these calls need; util.promisify
 * costs ~1 ms at its first use. A process with nothing else to do (`resolve`) makes
 * them synchronously ({@link callSynchronously}): its calls come one after the other
 * anyway, and the thread pool is never started (~3 ms less). Same calls, same errors,
 * either way.
 */
import * as fs from 'node:fs'

type Done<T> = (error: NodeJS.ErrnoException | null, value: T) => void

let synchronous = false

/** From now on, make every call here synchronously (still returning promises). */
export function callSynchronously(): void {
  synchronous = true
}

function call<T>(now: () => T, start: (done: Done<T>) => void): Promise<T> {
  if (synchronous) return new Promise((resolve) => resolve(now()))
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))))
}

/** For the calls whose callback has no value. */
const noValue = (done: Done<void>) => (error: NodeJS.ErrnoException | null) => done(error, undefined)

export const {constants} = fs
export const access = (path: string, mode: number) => call(() => fs.accessSync(path, mode), (done) => fs.access(path, mode, noValue(done)))
export const chmod = (path: string, mode: number) => call(() => fs.chmodSync(path, mode), (done) => fs.chmod(path, mode, noValue(done)))
export const lstat = (path: string) => call(() => fs.lstatSync(path), (done: Done<fs.Stats>) => fs.lstat(path, done))
export const stat = (path: string) => call(() => fs.statSync(path), (done: Done<fs.Stats>) => fs.stat(path, done))
export const mkdir = (path: string) => call<void>(() => void fs.mkdirSync(path), (done) => fs.mkdir(path, noValue(done)))
export const readFile = (path: string, encoding: 'utf8') => call(() => fs.readFileSync(path, encoding), (done: Done<string>) => fs.readFile(path, encoding, done))
export const readlink = (path: string) => call(() => fs.readlinkSync(path), (done: Done<string>) => fs.readlink(path, done))
/** The kernel's realpath(3), as node:fs/promises's realpath. */
export const realpath = (path: string) => call(() => fs.realpathSync.native(path), (done: Done<string>) => fs.realpath.native(path, done))
export const symlink = (target: string, path: string) => call(() => fs.symlinkSync(target, path), (done) => fs.symlink(target, path, noValue(done)))
export const writeFile = (path: string, data: string | Uint8Array, options: fs.WriteFileOptions) =>
  call(() => fs.writeFileSync(path, data, options), (done) => fs.writeFile(path, data, options, noValue(done)))

export function readdir(path: string): Promise<string[]>
export function readdir(path: string, options: {withFileTypes: true}): Promise<fs.Dirent[]>
export function readdir(path: string, options?: {withFileTypes: true}): Promise<string[] | fs.Dirent[]> {
  return options
    ? call(() => fs.readdirSync(path, options), (done: Done<fs.Dirent[]>) => fs.readdir(path, options, done))
    : call(() => fs.readdirSync(path), (done: Done<string[]>) => fs.readdir(path, done))
}

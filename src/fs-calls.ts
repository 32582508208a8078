/**
 * The asynchronous file-system calls of the hot paths' readers (the layout's: resolve,
 * list, links, mount points; gc's scan; the hook files' reader), made through node:fs
 * rather than node:fs/promises. `resolve` runs before every container start, and loading
 * node:fs/promises loads Node.js's stream, readline and file-watching modules with it
 * (~7 M instructions, ~2–3 ms on Node.js 20), for nothing these calls need;
 * util.promisify costs ~1 ms at its first use. (Everything else calls node:fs/promises,
 * loaded at its first call: src/fs-promises.ts.) A process with nothing else to do
 * (`resolve`) makes them synchronously ({@link callSynchronously}): its calls come one
 * after the other anyway, and the thread pool is never started (~3 ms less). Same calls,
 * same errors, either way.
 */
// Named imports: a bundle makes a copy of a whole module's namespace at load.
import {access as fsAccess, accessSync as fsAccessSync, chmod as fsChmod, chmodSync as fsChmodSync, lstat as fsLstat, lstatSync as fsLstatSync, mkdir as fsMkdir, mkdirSync as fsMkdirSync, readFile as fsReadFile, readFileSync as fsReadFileSync, readdir as fsReaddir, readdirSync as fsReaddirSync, readlink as fsReadlink, readlinkSync as fsReadlinkSync, realpath as fsRealpath, realpathSync as fsRealpathSync, stat as fsStat, statSync as fsStatSync, symlink as fsSymlink, symlinkSync as fsSymlinkSync, writeFile as fsWriteFile, writeFileSync as fsWriteFileSync, type Dirent, type Stats, type WriteFileOptions} from 'node:fs'

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

export {constants} from 'node:fs'
export const access = (path: string, mode: number) => call(() => fsAccessSync(path, mode), (done) => fsAccess(path, mode, noValue(done)))
export const chmod = (path: string, mode: number) => call(() => fsChmodSync(path, mode), (done) => fsChmod(path, mode, noValue(done)))
export const lstat = (path: string) => call(() => fsLstatSync(path), (done: Done<Stats>) => fsLstat(path, done))
export const stat = (path: string) => call(() => fsStatSync(path), (done: Done<Stats>) => fsStat(path, done))
export const mkdir = (path: string) => call<void>(() => void fsMkdirSync(path), (done) => fsMkdir(path, noValue(done)))
export const readFile = (path: string, encoding: 'utf8') => call(() => fsReadFileSync(path, encoding), (done: Done<string>) => fsReadFile(path, encoding, done))
export const readlink = (path: string) => call(() => fsReadlinkSync(path), (done: Done<string>) => fsReadlink(path, done))
/** The kernel's realpath(3), as node:fs/promises's realpath. */
export const realpath = (path: string) => call(() => fsRealpathSync.native(path), (done: Done<string>) => fsRealpath.native(path, done))
export const symlink = (target: string, path: string) => call(() => fsSymlinkSync(target, path), (done) => fsSymlink(target, path, noValue(done)))
export const writeFile = (path: string, data: string | Uint8Array, options: WriteFileOptions) =>
  call(() => fsWriteFileSync(path, data, options), (done) => fsWriteFile(path, data, options, noValue(done)))

export function readdir(path: string): Promise<string[]>
export function readdir(path: string, options: {withFileTypes: true; recursive?: boolean}): Promise<Dirent[]>
export function readdir(path: string, options?: {withFileTypes: true; recursive?: boolean}): Promise<string[] | Dirent[]> {
  return options
    ? call(() => fsReaddirSync(path, options), (done: Done<Dirent[]>) => fsReaddir(path, options, done))
    : call(() => fsReaddirSync(path), (done: Done<string[]>) => fsReaddir(path, done))
}

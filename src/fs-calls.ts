/**
 * The asynchronous file-system calls of the hot paths' readers (the layout's: resolve,
 * list, links, mount points; gc's scan; the hook files' reader), made through node:fs
 * rather than node:fs/promises. `resolve` runs before every container start, and loading
 * node:fs/promises loads Node.js's stream, readline and file-watching modules with it
 * (~7 M instructions, ~2–3 ms on Node.js 20), for nothing these calls need;
 * util.promisify costs ~1 ms at its first use. (Everything else calls node:fs/promises,
 * loaded at its first call: src/fs-promises.ts.) A process with nothing else to do
 * makes them synchronously ({@link callSynchronously}): `resolve` always, as its calls
 * come one after the other anyway; `list`, `gc`, `rm` and `hook validate` while the file
 * system answers at once (a page cache, a warm CVMFS cache), and in parallel through the
 * thread pool from the first call that had to wait (a CVMFS mount fetching, a cold disk),
 * where their reads many at a time pay. A synchronous call skips the round trips through
 * the thread pool (~0.1 ms each here; a read of a file takes four or five), and the pool
 * is never started: `list` and `gc --dry-run` of one image 1.1 ms sooner (BENCHMARKS.md).
 * Same calls, same errors, either way.
 */
// Named imports: a bundle makes a copy of a whole module's namespace at load.
import {access as fsAccess, accessSync as fsAccessSync, chmod as fsChmod, chmodSync as fsChmodSync, lstat as fsLstat, lstatSync as fsLstatSync, mkdir as fsMkdir, mkdirSync as fsMkdirSync, readFile as fsReadFile, readFileSync as fsReadFileSync, readdir as fsReaddir, readdirSync as fsReaddirSync, readlink as fsReadlink, readlinkSync as fsReadlinkSync, realpath as fsRealpath, realpathSync as fsRealpathSync, stat as fsStat, statSync as fsStatSync, symlink as fsSymlink, symlinkSync as fsSymlinkSync, writeFile as fsWriteFile, writeFileSync as fsWriteFileSync, type Dirent, type Stats, type WriteFileOptions} from 'node:fs'

type Done<T> = (error: NodeJS.ErrnoException | null, value: T) => void

/**
 * A call that took longer than this waited for a device or the network: a synchronous
 * call answered from the page cache takes 10–130 µs here, ~0.2 ms for the first of its kind
 * (measured on a 2-core VM: lstatSync, readdirSync, readFileSync, readlinkSync). A call
 * preempted on a busy machine counts as one that waited (measured: half the runs of `gc
 * --dry-run` beside three busy loops on two cores went over to the thread pool), which
 * costs such a run only what every run cost before the synchronous mode.
 */
export const WAITED_MS = 1

/** Calls made synchronously: none (-1), all (Infinity), or until one takes longer than this many ns. */
let synchronousBelowNs = -1

/**
 * From now on, make every call here synchronously (still returning promises); with
 * `untilSlowerThanMs`, only until one call takes longer than that (a call that waited
 * for a device or the network), and asynchronously again from then on.
 */
export function callSynchronously({untilSlowerThanMs = Infinity}: {untilSlowerThanMs?: number} = {}): void {
  synchronousBelowNs = untilSlowerThanMs * 1e6
}

/**
 * For a command that does nothing else while it reads (`list`, `gc`, `rm`, `hook
 * validate`): synchronous calls until one waits longer than {@link WAITED_MS}.
 */
export function callSynchronouslyWhileFast(): void {
  callSynchronously({untilSlowerThanMs: WAITED_MS})
}

/** Whether the next call will be made synchronously. */
export function callsSynchronously(): boolean {
  return synchronousBelowNs >= 0
}

function call<T>(now: () => T, start: (done: Done<T>) => void): Promise<T> {
  if (synchronousBelowNs >= 0) {
    // (Never slower than Infinity: `resolve` stays synchronous.)
    const started = process.hrtime()
    const made = new Promise<T>((resolve) => resolve(now()))
    const [s, ns] = process.hrtime(started)
    if (s * 1e9 + ns > synchronousBelowNs) synchronousBelowNs = -1
    return made
  }
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

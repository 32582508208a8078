/**
 * The asynchronous file-system calls of the layout's readers (resolve, list, links,
 * mount points), made through node:fs's callbacks rather than node:fs/promises.
 * `resolve` runs before every container start, and loading node:fs/promises loads
 * Node.js's stream modules with it (~2 ms on Node.js 20), for nothing these calls need;
 * util.promisify costs ~1 ms at its first use. Same calls, same errors: only the module
 * that makes them differs.
 */
import * as fs from 'node:fs'

type Done<T> = (error: NodeJS.ErrnoException | null, value: T) => void

function call<T>(start: (done: Done<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))))
}

export const {constants} = fs
export const access = (path: string, mode: number) => call<void>((done) => fs.access(path, mode, (error) => done(error, undefined)))
export const chmod = (path: string, mode: number) => call<void>((done) => fs.chmod(path, mode, (error) => done(error, undefined)))
export const lstat = (path: string) => call<fs.Stats>((done) => fs.lstat(path, done))
export const stat = (path: string) => call<fs.Stats>((done) => fs.stat(path, done))
export const mkdir = (path: string) => call<void>((done) => fs.mkdir(path, (error) => done(error, undefined)))
export const readFile = (path: string, encoding: 'utf8') => call<string>((done) => fs.readFile(path, encoding, done))
export const readlink = (path: string) => call<string>((done) => fs.readlink(path, done))
/** The kernel's realpath(3), as node:fs/promises's realpath. */
export const realpath = (path: string) => call<string>((done) => fs.realpath.native(path, done))
export const symlink = (target: string, path: string) => call<void>((done) => fs.symlink(target, path, (error) => done(error, undefined)))
export const writeFile = (path: string, data: string | Uint8Array, options: fs.WriteFileOptions) =>
  call<void>((done) => fs.writeFile(path, data, options, (error) => done(error, undefined)))

export function readdir(path: string): Promise<string[]>
export function readdir(path: string, options: {withFileTypes: true}): Promise<fs.Dirent[]>
export function readdir(path: string, options?: {withFileTypes: true}): Promise<string[] | fs.Dirent[]> {
  return options ? call<fs.Dirent[]>((done) => fs.readdir(path, options, done)) : call<string[]>((done) => fs.readdir(path, done))
}

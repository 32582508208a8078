/**
 * node:fs/promises, loaded at the first call. Loading it loads Node.js's stream, readline
 * and file-watching modules with it (~7 M instructions, ~2–3 ms on Node.js 20), which a
 * command whose bundle merely holds a module that writes files (`rm` with nothing to
 * remove, `hook validate`, `gc --dry-run` before its scan) would pay at every start for
 * nothing. Same functions, same values and errors: each one is node:fs/promises's own,
 * called through. Modules import from here instead of node:fs/promises; its types stay
 * node:fs/promises's (`import type`).
 */
import {fsPromises} from './builtins.js'

type FsPromises = typeof import('node:fs/promises')

/** The function `name` of node:fs/promises, with its own type (overloads and all). */
function lazy<K extends keyof FsPromises>(name: K): FsPromises[K] {
  return ((...args: unknown[]) => (fsPromises()[name] as (...a: unknown[]) => unknown)(...args)) as FsPromises[K]
}

export const lstat = lazy('lstat')
export const mkdir = lazy('mkdir')
export const open = lazy('open')
export const readdir = lazy('readdir')
export const readFile = lazy('readFile')
export const readlink = lazy('readlink')
export const realpath = lazy('realpath')
export const rename = lazy('rename')
export const rm = lazy('rm')
export const rmdir = lazy('rmdir')
export const stat = lazy('stat')
export const symlink = lazy('symlink')
export const unlink = lazy('unlink')
export const utimes = lazy('utimes')
export const writeFile = lazy('writeFile')

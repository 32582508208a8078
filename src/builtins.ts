/**
 * Node.js modules that take long to load, loaded on first use: node:crypto, node:zlib,
 * node:worker_threads and node:child_process (with net, dgram and streams) together cost
 * more than a quarter of `node -e 0` here, and most commands' first lines (a lock taken, a
 * wish list read, a name resolved) need none of them. `require` caches: a second call is a
 * lookup.
 */
import {createRequire} from 'node:module'
import {join} from 'node:path'

let required: NodeJS.Require | undefined
// From a path, not import.meta.url: a bundle makes its import.meta.url at its first use,
// through Node.js's URL code, on every run that loads a built-in here (src/cli/fast-paths.ts
// says what that cost); and a bundle's createRequire is its own require anyway.
const load = (id: string): unknown => (required ??= createRequire(join(import.meta.dirname, 'builtins.js')))(id)

export const crypto = (): typeof import('node:crypto') => load('node:crypto') as typeof import('node:crypto')
export const zlib = (): typeof import('node:zlib') => load('node:zlib') as typeof import('node:zlib')
export const workerThreads = (): typeof import('node:worker_threads') => load('node:worker_threads') as typeof import('node:worker_threads')
/** node:os: small, but only `$HOME`-less runs need it before their work. */
export const os = (): typeof import('node:os') => load('node:os') as typeof import('node:os')
/** node:fs/promises (with streams, readline and file watching): src/fs-promises.ts calls through it. */
export const fsPromises = (): typeof import('node:fs/promises') => load('node:fs/promises') as typeof import('node:fs/promises')
/** node:vm: only a bundle read through the code cache needs it (src/cli/code-cache.ts). */
export const vm = (): typeof import('node:vm') => load('node:vm') as typeof import('node:vm')
export const childProcess = (): typeof import('node:child_process') => load('node:child_process') as typeof import('node:child_process')

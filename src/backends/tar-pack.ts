/**
 * A directory tree as a tar stream, for `cvmfs_server ingest -t -`. What the tree holds
 * goes into the archive as the layer merge left it: file types (directories, files,
 * symlinks, hardlinks, character and block devices, FIFOs), permission bits with
 * setuid/setgid/sticky, numeric owners and mtimes (whole seconds, as tar keeps them).
 * Sockets are left out (a tar cannot hold them; images have none). File names are handled
 * as UTF-8, as the layer merge writes them.
 *
 * Extended attributes are not packed: CernVM-FS 2.12's tar ingestion drops them in every
 * tar header form (GNU/SCHILY, LIBARCHIVE); the ingest backend sets them in a transaction
 * (ingest-plan.ts). Hardlinks are packed as tar hardlinks (the content goes once), and come
 * out of the repository as separate files, as every hardlink published to CernVM-FS does.
 */
import {createReadStream, type Stats} from 'node:fs'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import tar, {type Header, type Pack} from 'tar-stream'

import {lstat, readdir, readlink} from '../fs-promises.js'
import type {Logger} from '../log.js'

/** The largest id a ustar header holds (7 octal digits); larger ones go into PAX. */
const USTAR_ID_MAX = 0o7777777

export interface PackOptions {
  /** Leave out these paths (relative to the tree, `/`-separated) and everything below them. */
  exclude?: (rel: string) => boolean
  logger: Logger
}

/**
 * Pack `dir` (as `./`) and the tree below it as a tar stream, entries named relative to
 * `dir`, parents before children. Errors (a file vanishing) destroy the stream with that
 * error.
 */
export function packTree(dir: string, options: PackOptions): Readable {
  const pack = tar.pack()
  const fill = async () => {
    const walk: Walk = {exclude: options.exclude ?? (() => false), hardlinks: new Map(), logger: options.logger}
    await addEntry(pack, dir, './', await lstat(dir), walk)
    await addChildren(pack, dir, '', walk)
    pack.finalize()
  }
  fill().catch((error: unknown) => pack.destroy(error as Error))
  return Readable.from(pack as AsyncIterable<Buffer>)
}

interface Walk {
  exclude: (rel: string) => boolean
  /** dev:ino → the name the first path of a hardlinked file was packed under. */
  hardlinks: Map<string, string>
  logger: Logger
}

async function addChildren(pack: Pack, dir: string, rel: string, walk: Walk): Promise<void> {
  const names = (await readdir(rel === '' ? dir : join(dir, rel))).sort()
  for (const name of names) {
    const childRel = rel === '' ? name : `${rel}/${name}`
    if (walk.exclude(childRel)) continue
    const abs = join(dir, childRel)
    const info = await lstat(abs)
    if (info.isSocket()) {
      walk.logger.warn(`${abs}: a socket cannot be put in a tar; left out`)
      continue
    }
    await addEntry(pack, abs, childRel, info, walk)
    if (info.isDirectory()) await addChildren(pack, dir, childRel, walk)
  }
}

async function addEntry(pack: Pack, abs: string, name: string, info: Stats, walk: Walk): Promise<void> {
  const header: Header = {
    name,
    size: 0,
    mode: info.mode & 0o7777,
    mtime: new Date(Math.max(0, Math.floor(info.mtimeMs / 1000)) * 1000),
    type: 'file',
    linkname: '',
    uid: info.uid,
    gid: info.gid,
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  }
  const pax: Record<string, string> = {}
  for (const id of ['uid', 'gid'] as const) {
    if (header[id] > USTAR_ID_MAX) {
      pax[id] = String(header[id])
      header[id] = 0
    }
  }
  if (Object.keys(pax).length > 0) header.pax = pax

  if (info.isFile() && info.nlink > 1) {
    const key = `${info.dev}:${info.ino}`
    const first = walk.hardlinks.get(key)
    if (first !== undefined) return write(pack, {...header, type: 'link', linkname: first})
    walk.hardlinks.set(key, name)
  }
  if (info.isDirectory()) return write(pack, {...header, type: 'directory'})
  if (info.isSymbolicLink()) return write(pack, {...header, type: 'symlink', linkname: await readlink(abs)})
  if (info.isFIFO()) return write(pack, {...header, type: 'fifo'})
  if (info.isCharacterDevice() || info.isBlockDevice()) {
    const devmajor = Math.floor(info.rdev / 256) & 0xfff
    const devminor = (info.rdev & 0xff) | (Math.floor(info.rdev / 4096) & 0xfff00)
    return write(pack, {...header, type: info.isBlockDevice() ? 'block-device' : 'character-device', devmajor, devminor})
  }
  const entry = pack.entry({...header, size: info.size})
  await pipeline(createReadStream(abs), entry as unknown as NodeJS.WritableStream)
}

async function write(pack: Pack, header: Header): Promise<void> {
  await new Promise<void>((resolve, reject) => pack.entry(header, (error) => (error ? reject(error) : resolve())))
}

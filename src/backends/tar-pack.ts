/**
 * A directory tree as a tar stream, for `cvmfs_server ingest -t -`. What the tree holds
 * goes into the archive as the layer merge left it: file types (directories, files,
 * symlinks, hardlinks, character and block devices, FIFOs), permission bits with
 * setuid/setgid/sticky, numeric owners, mtimes (whole seconds, as tar keeps them) and
 * extended attributes (`SCHILY.xattr.*` PAX records, binary values intact). Sockets are
 * left out (a tar cannot hold them; images have none). File names are handled as UTF-8,
 * as the layer merge writes them.
 *
 * tar-stream writes PAX values as UTF-8 text, which would corrupt binary attribute values
 * such as `security.capability`; its PAX encoder is replaced so that `SCHILY.xattr.*`
 * values (given as latin1 strings, one character per byte) keep their bytes. tar-stream
 * is pinned to 3.x; the tests compare an extracted archive with the tree it came from.
 */
import {createReadStream, type Stats} from 'node:fs'
import {lstat, readdir, readlink} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import tar, {type Header, type Pack} from 'tar-stream'

import type {Logger} from '../log.js'
import {XATTR_PREFIX} from '../unpack/tar-parser.js'
import {readXattrTree, type XattrTable} from '../unpack/xattrs.js'

const require = createRequire(import.meta.url)
const tarHeaders = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as {
  encodePax: (opts: {name?: string; linkname?: string; pax?: Record<string, string>}) => Buffer
}

/** One `<length> <key>=<value>\n` record; the length counts its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')])
  let length = body.length + String(body.length).length
  if (String(length).length > String(body.length).length) length++
  return Buffer.concat([Buffer.from(String(length), 'ascii'), body])
}

tarHeaders.encodePax = (opts) => {
  const records: Buffer[] = []
  if (opts.name) records.push(paxRecord('path', Buffer.from(opts.name, 'utf8')))
  if (opts.linkname) records.push(paxRecord('linkpath', Buffer.from(opts.linkname, 'utf8')))
  for (const [key, value] of Object.entries(opts.pax ?? {})) {
    records.push(paxRecord(key, Buffer.from(value, key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8')))
  }
  return Buffer.concat(records)
}

/** Extended attributes overlayfs keeps for itself on an upper directory: never packed. */
const OVERLAY_XATTR = 'trusted.overlay.'
/** The largest id a ustar header holds (7 octal digits); larger ones go into PAX. */
const USTAR_ID_MAX = 0o7777777

export interface PackOptions {
  /** Leave out these paths (relative to the tree, `/`-separated) and everything below them. */
  exclude?: (rel: string) => boolean
  logger: Logger
}

/**
 * Pack the tree below `dir` (not `dir` itself) as a tar stream, entries named relative to
 * `dir`, parents before children. Errors (a file vanishing, getfattr failing) destroy the
 * stream with that error.
 */
export function packTree(dir: string, options: PackOptions): Readable {
  const pack = tar.pack()
  const fill = async () => {
    const xattrs = await readXattrTree(dir, options.logger)
    await addChildren(pack, dir, '', {xattrs, exclude: options.exclude ?? (() => false), hardlinks: new Map(), logger: options.logger})
    pack.finalize()
  }
  fill().catch((error: unknown) => pack.destroy(error as Error))
  return Readable.from(pack as AsyncIterable<Buffer>)
}

interface Walk {
  xattrs: XattrTable
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
  for (const [key, value] of walk.xattrs.get(abs) ?? []) {
    if (!key.startsWith(OVERLAY_XATTR)) pax[`${XATTR_PREFIX}${key}`] = value.toString('latin1')
  }
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

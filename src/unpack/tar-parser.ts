/**
 * A tar parser without streams: bytes are pushed in as they are decompressed and
 * taken out as events (an entry's header, slices of its data, its end), one call
 * each, so the merge applies a whole chunk of entries synchronously. It reads what
 * tar-stream read (ustar, GNU, PAX with its checks and messages) and applies PAX
 * records as Go's archive/tar does, which builds and unpacks most images: `path`,
 * `linkpath`, `size`, `uid`, `gid`, `mtime` (fractions kept), `uname`, `gname`
 * (global PAX headers change no entry, as for docker's and containerd's appliers);
 * `SCHILY.xattr.*` values keep their raw bytes (a `security.capability` holds bytes
 * ≥ 0x80), as a latin1 string, one char per byte. Entries of the header-only types
 * (links, devices, FIFOs, directories) have no data, whatever their size field says,
 * as for Go.
 */
export const XATTR_PREFIX = 'SCHILY.xattr.'

export type TarEntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'

/** A tar entry's header, long names and PAX records applied. */
export interface TarHeader {
  name: string
  /** Permission bits and special bits (the header's mode field). */
  mode: number
  uid: number
  gid: number
  /** Bytes of data that follow the header. */
  size: number
  /** Seconds since the epoch (a PAX mtime keeps its fraction). */
  mtime: number
  /** `null` for a type flag this parser does not know (the merge refuses those). */
  type: TarEntryType | null
  /** The raw type flag, for messages. */
  typeflag: string
  linkname: string | null
  uname: string
  gname: string
  devmajor: number
  devminor: number
  /** The entry's PAX records, or null. */
  pax: Record<string, string> | null
}

export type TarEvent = {kind: 'header'; header: TarHeader} | {kind: 'data'; bytes: Buffer} | {kind: 'end'}

/** Largest PAX or GNU long-name record held in memory, as tar-stream allowed. */
const MAX_LONG_HEADER = 4 * 1024 * 1024
const BLOCK = 512

const TYPES: Record<number, TarEntryType> = {
  0: 'file',
  0x30: 'file',
  0x31: 'link',
  0x32: 'symlink',
  0x33: 'character-device',
  0x34: 'block-device',
  0x35: 'directory',
  0x36: 'fifo',
  0x37: 'contiguous-file',
}
const HEADER_ONLY = new Set<TarEntryType>(['link', 'symlink', 'character-device', 'block-device', 'directory', 'fifo'])
const PAX_LOCAL = 0x78 // x
const PAX_GLOBAL = 0x67 // g
const GNU_LONG_NAME = 0x4c // L
const GNU_LONG_LINK = 0x4b // K

/** A tar that cannot be read (merge.ts turns these into "not a valid tar archive"). */
export class TarFormatError extends Error {}

/** The tar checksum of a header block: its bytes, the checksum field counted as spaces. */
function checksum(block: Buffer): number {
  let sum = 8 * 0x20
  for (let i = 0; i < 148; i++) sum += block[i]!
  for (let i = 156; i < BLOCK; i++) sum += block[i]!
  return sum
}

/** A numeric field: octal (spaces and NULs around it), or GNU's base-256 when the top bit is set. */
function numeric(block: Buffer, offset: number, length: number): number {
  const first = block[offset]!
  if (first & 0x80) {
    // base-256, big-endian, two's complement when the first byte is 0xff
    if (first !== 0x80 && first !== 0xff) return Number.NaN
    const negative = first === 0xff
    let value = 0
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (negative ? 0xff - block[i]! : block[i]!)
    return negative ? -value : value
  }
  // As parseInt(field, 8) after leading spaces and NULs: digits up to the first other byte.
  let i = offset
  const end = offset + length
  while (i < end && block[i] === 0x20) i++
  while (i < end && block[i] === 0) i++
  if (i === end || block[i] === 0x20) return 0
  let value = 0
  let digits = 0
  for (; i < end; i++) {
    const c = block[i]!
    if (c < 0x30 || c > 0x37) break
    value = value * 8 + (c - 0x30)
    digits++
  }
  return digits === 0 ? Number.NaN : value
}

/** A NUL-terminated text field, UTF-8. */
function text(block: Buffer, offset: number, length: number): string {
  let end = offset
  const limit = offset + length
  while (end < limit && block[end] !== 0) end++
  return block.toString('utf8', offset, end)
}

function isMagic(block: Buffer, ustar: boolean): boolean {
  // "ustar\0" + "00" (POSIX), or "ustar " + " \0" (GNU)
  if (block[257] !== 0x75 || block[258] !== 0x73 || block[259] !== 0x74 || block[260] !== 0x61 || block[261] !== 0x72) return false
  return ustar ? block[262] === 0 : block[262] === 0x20 && block[263] === 0x20 && block[264] === 0
}

/** PAX records `"<len> <key>=<value>\n"`; xattr values stay bytes (latin1), the rest UTF-8. */
export function decodePax(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {}
  let rest = buf
  while (rest.length > 0) {
    const space = rest.indexOf(0x20)
    if (space <= 0) break
    const length = Number.parseInt(rest.toString('ascii', 0, space), 10)
    if (!Number.isSafeInteger(length) || length <= space || length > rest.length) break
    const record = rest.subarray(space + 1, length - 1) // drop the trailing newline
    const eq = record.indexOf(0x3d)
    if (eq === -1) break
    const key = record.toString('utf8', 0, eq)
    result[key] = key.startsWith(XATTR_PREFIX) ? record.toString('latin1', eq + 1) : record.toString('utf8', eq + 1)
    rest = rest.subarray(length)
  }
  return result
}

/** A PAX number (`uid`, `size`), or undefined when absent or not a number. */
function paxInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined
  const n = Number(value)
  return Number.isSafeInteger(n) ? n : undefined
}

/** Extended attributes of an entry, values as raw bytes. */
export function entryXattrs(header: Pick<TarHeader, 'pax'>): Map<string, Buffer> | undefined {
  if (!header.pax) return undefined
  let xattrs: Map<string, Buffer> | undefined
  for (const key in header.pax) {
    if (!key.startsWith(XATTR_PREFIX)) continue
    xattrs ??= new Map()
    xattrs.set(key.slice(XATTR_PREFIX.length), Buffer.from(header.pax[key]!, 'latin1'))
  }
  return xattrs
}

/**
 * Push bytes with {@link push}, take events with {@link next} until it returns
 * undefined (it needs more bytes), and call {@link end} after the last push.
 */
export class TarParser {
  private chunks: Buffer[] = []
  /** Offset into chunks[0]. */
  private offset = 0
  private buffered = 0
  /** Data bytes of the current entry still to hand out. */
  private dataLeft = 0
  /** Padding (and skipped data) still to drop before the next header. */
  private skipLeft = 0
  /** A long header's data to collect (type flag, length). */
  private longHeader: {type: number; size: number} | undefined
  private inEntry = false
  private pendingEnd = false
  private pax: Record<string, string> | null = null
  private longName: string | null = null
  private longLink: string | null = null
  /** Uncompressed bytes consumed, for messages. */
  position = 0

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.buffered += chunk.length
  }

  /** The next event, or undefined when more bytes are needed. */
  next(): TarEvent | undefined {
    for (;;) {
      if (this.pendingEnd) {
        this.pendingEnd = false
        this.inEntry = false
        return {kind: 'end'}
      }
      if (this.dataLeft > 0) {
        if (this.buffered === 0) return undefined
        const bytes = this.take(this.dataLeft)
        this.dataLeft -= bytes.length
        if (this.dataLeft === 0) this.pendingEnd = true
        return {kind: 'data', bytes}
      }
      if (this.skipLeft > 0) {
        if (this.buffered === 0) return undefined
        this.skipLeft -= this.take(this.skipLeft).length
        continue
      }
      if (this.longHeader) {
        const {type, size} = this.longHeader
        if (this.buffered < size) return undefined
        this.longHeader = undefined
        this.decodeLong(type, this.takeExactly(size))
        this.skipLeft = padding(size)
        continue
      }
      if (this.buffered < BLOCK) return undefined
      const event = this.header(this.takeExactly(BLOCK))
      if (event) return event
    }
  }

  /**
   * Copy the bytes still held (at most an unfinished header), so that the chunks pushed
   * so far may be reused by their owner. Call it once {@link next} returned undefined.
   */
  release(): void {
    if (this.chunks.length === 0) return
    const rest = Buffer.allocUnsafe(this.buffered)
    let filled = 0
    for (const [i, chunk] of this.chunks.entries()) filled += chunk.copy(rest, filled, i === 0 ? this.offset : 0)
    this.chunks = [rest]
    this.offset = 0
  }

  /** The input ended: throws unless it ended between entries. */
  end(): void {
    if (this.buffered > 0 || this.dataLeft > 0 || this.skipLeft > 0 || this.longHeader || this.inEntry) {
      throw new TarFormatError(`Unexpected end of data (the tar stops inside an entry, after ${this.position} bytes)`)
    }
  }

  private header(block: Buffer): TarEvent | undefined {
    const sum = checksum(block)
    if (sum === 8 * 0x20) return undefined // a zero block: end-of-archive marker or padding
    if (sum !== numeric(block, 148, 8)) throw new TarFormatError('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?')
    const ustar = isMagic(block, true)
    if (!ustar && !isMagic(block, false)) throw new TarFormatError('Invalid tar header: unknown format.')
    const flag = block[156]!
    const size = numeric(block, 124, 12)
    if (flag === PAX_LOCAL || flag === PAX_GLOBAL || flag === GNU_LONG_NAME || flag === GNU_LONG_LINK) {
      if (!(size >= 0)) throw new TarFormatError('Invalid header')
      if (size > MAX_LONG_HEADER) throw new TarFormatError('Header exceeds max size')
      this.longHeader = {type: flag, size}
      return undefined
    }
    let name = text(block, 0, 100)
    if (ustar && block[345] !== 0) name = `${text(block, 345, 155)}/${name}`
    let type: TarEntryType | null = TYPES[flag] ?? null
    // Old tars mark directories by a trailing slash.
    if (type === 'file' && flag === 0 && name.endsWith('/')) type = 'directory'
    const header: TarHeader = {
      name,
      mode: numeric(block, 100, 8),
      uid: numeric(block, 108, 8),
      gid: numeric(block, 116, 8),
      size,
      mtime: numeric(block, 136, 12),
      type,
      typeflag: flag === 0 ? '0' : String.fromCharCode(flag),
      linkname: block[157] === 0 ? null : text(block, 157, 100),
      uname: text(block, 265, 32),
      gname: text(block, 297, 32),
      devmajor: numeric(block, 329, 8),
      devminor: numeric(block, 337, 8),
      pax: null,
    }
    this.applyLong(header)
    if (!(header.size >= 0) || !Number.isSafeInteger(header.size)) throw new TarFormatError('Invalid header')
    const dataBytes = type !== null && HEADER_ONLY.has(type) ? 0 : header.size
    this.dataLeft = dataBytes
    this.skipLeft = padding(dataBytes)
    this.inEntry = true
    if (dataBytes === 0) this.pendingEnd = true
    return {kind: 'header', header}
  }

  private decodeLong(type: number, data: Buffer): void {
    if (type === GNU_LONG_NAME) this.longName = text(data, 0, data.length)
    else if (type === GNU_LONG_LINK) this.longLink = text(data, 0, data.length)
    else if (type === PAX_LOCAL) this.pax = {...this.pax, ...decodePax(data)}
    // A global header (git archive writes one, with a comment) changes no entry, as for docker's and containerd's appliers.
  }

  private applyLong(header: TarHeader): void {
    if (this.longName !== null) header.name = this.longName
    if (this.longLink !== null) header.linkname = this.longLink
    this.longName = this.longLink = null
    const pax = this.pax
    this.pax = null
    if (!pax) return
    header.pax = pax
    if (pax.path) header.name = pax.path
    if (pax.linkpath) header.linkname = pax.linkpath
    header.size = paxInteger(pax.size) ?? header.size
    header.uid = paxInteger(pax.uid) ?? header.uid
    header.gid = paxInteger(pax.gid) ?? header.gid
    if (pax.uname !== undefined) header.uname = pax.uname
    if (pax.gname !== undefined) header.gname = pax.gname
    if (pax.mtime !== undefined && /^-?\d+(\.\d+)?$/.test(pax.mtime)) header.mtime = Number(pax.mtime)
  }

  /** Up to `max` bytes from the front (a slice of one chunk, never a copy). */
  private take(max: number): Buffer {
    const first = this.chunks[0]!
    const available = first.length - this.offset
    const n = Math.min(max, available)
    const bytes = first.subarray(this.offset, this.offset + n)
    this.consume(n, available)
    return bytes
  }

  /** Exactly `n` buffered bytes (copied together when they span chunks). */
  private takeExactly(n: number): Buffer {
    const first = this.chunks[0]!
    const available = first.length - this.offset
    if (available >= n) {
      const bytes = first.subarray(this.offset, this.offset + n)
      this.consume(n, available)
      return bytes
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const part = this.take(n - filled)
      part.copy(out, filled)
      filled += part.length
    }
    return out
  }

  private consume(n: number, available: number): void {
    this.buffered -= n
    this.position += n
    if (n === available) {
      this.chunks.shift()
      this.offset = 0
    } else {
      this.offset += n
    }
  }
}

/** Bytes of padding after `size` bytes of data. */
function padding(size: number): number {
  const rest = size % BLOCK
  return rest === 0 ? 0 : BLOCK - rest
}

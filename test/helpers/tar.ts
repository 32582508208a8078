/**
 * Tar layers built in code (style point 6). Entry names are written exactly as
 * given, so hostile archives (`../evil`, `/abs/path`, `a/../../x`, links that
 * escape) can be produced for security regression tests.
 *
 * tar-stream's pack writes the plain ustar headers. Whenever an entry needs a
 * PAX record (long or non-ASCII names, long link targets, big ids, xattrs,
 * caller-supplied records) we write the PAX extended header ourselves as raw
 * bytes: tar-stream's PAX encoder only takes strings and writes them as UTF-8,
 * which would corrupt binary xattr values such as `security.capability`.
 */
import tarStream from 'tar-stream'

type HeaderArgument = Partial<tarStream.Header> & Pick<tarStream.Header, 'name'>

/** Kinds of tar entry {@link buildTar} can write. */
export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo'

/** One entry of a tar layer. */
export interface TarEntry {
  /** Written exactly as given (no normalisation, no trailing slash added). */
  name: string
  /** Default `'file'`. */
  type?: TarEntryType
  /** File content (files only). */
  content?: string | Buffer
  /** Permission bits incl. setuid/setgid/sticky; default 0644 (0755 dirs, 0777 symlinks). */
  mode?: number
  uid?: number
  gid?: number
  /** Default {@link DEFAULT_MTIME}, so layers are byte-for-byte reproducible. */
  mtime?: Date
  /** Target of a symlink, or the path a hardlink points to. */
  linkname?: string
  devmajor?: number
  devminor?: number
  /** Extended attributes, raw bytes, written as `SCHILY.xattr.<name>` PAX records. */
  xattrs?: Record<string, Buffer>
  /** Extra PAX records (UTF-8 text), written after the ones the helper adds, so they win. */
  pax?: Record<string, string>
}

/** mtime of entries that do not give one. */
export const DEFAULT_MTIME = new Date('2024-01-01T00:00:00Z')

// tar-stream turns mode 0 into 0644; handing it the file-type bits too keeps
// mode 0 (they are masked off when the header is encoded).
const TYPE_BITS: Record<TarEntryType, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  link: 0o100000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
}

const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  directory: 0o755,
  symlink: 0o777,
  link: 0o644,
  'character-device': 0o644,
  'block-device': 0o644,
  fifo: 0o644,
}

/** Largest id that fits the 7-byte octal ustar uid/gid field as tar-stream writes it (6 digits). */
const MAX_USTAR_ID = 0o777777

function fitsUstar(text: string, max: number): boolean {
  return /^[\x01-\x7f]*$/.test(text) && Buffer.byteLength(text) <= max
}

/** A stand-in ustar name for entries whose real name travels in the PAX `path` record. */
function placeholder(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '_').slice(-100) || 'PaxName'
}

/**
 * One PAX record `"<len> <key>=<value>\n"`, where len counts bytes and
 * includes its own digits.
 */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\n')])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return Buffer.concat([Buffer.from(String(len)), body])
}

function octal(value: number, width: number): string {
  // width-1 digits, then NUL (as GNU tar and tar-stream do)
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

/** A raw ustar header block. */
export function ustarHeader(fields: {name: string; typeflag: string; size: number; mode?: number; mtime?: Date}): Buffer {
  const block = Buffer.alloc(512)
  block.write(fields.name.slice(0, 100), 0, 'latin1')
  block.write(octal(fields.mode ?? 0o644, 8), 100)
  block.write(octal(0, 8), 108)
  block.write(octal(0, 8), 116)
  block.write(octal(fields.size, 12), 124)
  block.write(octal(Math.floor((fields.mtime ?? DEFAULT_MTIME).getTime() / 1000), 12), 136)
  block.write(fields.typeflag, 156)
  block.write('ustar\x0000', 257)
  block.fill(0x20, 148, 156) // checksum is computed with its own field as spaces
  let sum = 0
  for (const byte of block) sum += byte
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return block
}

/** A complete PAX extended header entry (typeflag `x`): header block + padded records. */
export function paxHeaderEntry(records: Buffer[], mtime?: Date): Buffer {
  const data = Buffer.concat(records)
  const pad = (512 - (data.length % 512)) % 512
  return Buffer.concat([ustarHeader({name: 'PaxHeader', typeflag: 'x', size: data.length, mtime}), data, Buffer.alloc(pad)])
}

interface PreparedEntry {
  header: HeaderArgument
  content?: Buffer
  pax?: Buffer
}

function prepare(entry: TarEntry): PreparedEntry {
  const type = entry.type ?? 'file'
  if (entry.content !== undefined && type !== 'file') throw new Error(`buildTar: ${entry.name}: only files have content (type ${type})`)
  const mtime = entry.mtime ?? DEFAULT_MTIME
  const uid = entry.uid ?? 0
  const gid = entry.gid ?? 0
  const records: Buffer[] = []
  const header: HeaderArgument = {
    name: entry.name,
    type,
    mode: (entry.mode ?? DEFAULT_MODE[type]) | TYPE_BITS[type],
    uid,
    gid,
    mtime,
    devmajor: entry.devmajor,
    devminor: entry.devminor,
  }
  if (entry.linkname !== undefined) header.linkname = entry.linkname
  if ((type === 'symlink' || type === 'link') && entry.linkname === undefined) throw new Error(`buildTar: ${entry.name}: ${type} needs linkname`)

  if (!fitsUstar(entry.name, 100)) {
    records.push(paxRecord('path', entry.name))
    header.name = placeholder(entry.name)
  }
  if (entry.linkname !== undefined && !fitsUstar(entry.linkname, 100)) {
    records.push(paxRecord('linkpath', entry.linkname))
    header.linkname = placeholder(entry.linkname)
  }
  if (uid > MAX_USTAR_ID) {
    records.push(paxRecord('uid', String(uid)))
    header.uid = 0
  }
  if (gid > MAX_USTAR_ID) {
    records.push(paxRecord('gid', String(gid)))
    header.gid = 0
  }
  for (const [name, value] of Object.entries(entry.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${name}`, value))
  for (const [key, value] of Object.entries(entry.pax ?? {})) records.push(paxRecord(key, value))

  const content = entry.content === undefined ? (type === 'file' ? Buffer.alloc(0) : undefined) : Buffer.from(entry.content)
  return {header, content, pax: records.length > 0 ? paxHeaderEntry(records, mtime) : undefined}
}

/**
 * Build an uncompressed tar archive from `entries`, in order.
 *
 * @returns the archive bytes (with the two zero blocks at the end).
 */
export async function buildTar(entries: TarEntry[]): Promise<Buffer> {
  const prepared = entries.map(prepare)
  const pack = tarStream.pack()
  const chunks: Buffer[] = []
  const finished = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (chunk) => chunks.push(chunk as Buffer))
    pack.on('end', () => resolve(Buffer.concat(chunks)))
    pack.on('error', reject)
  })
  for (const {header, content, pax} of prepared) {
    // Each entry is finished before the next starts, so raw bytes pushed here
    // land exactly between the previous entry's data and this entry's header.
    if (pax) pack.push(pax)
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve())
      if (content === undefined) pack.entry(header, done)
      else pack.entry(header, content, done)
    })
  }
  pack.finalize()
  return finished
}

/** Capability names → bit numbers (linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  cap_chown: 0,
  cap_dac_override: 1,
  cap_dac_read_search: 2,
  cap_fowner: 3,
  cap_fsetid: 4,
  cap_kill: 5,
  cap_setgid: 6,
  cap_setuid: 7,
  cap_setpcap: 8,
  cap_linux_immutable: 9,
  cap_net_bind_service: 10,
  cap_net_broadcast: 11,
  cap_net_admin: 12,
  cap_net_raw: 13,
  cap_ipc_lock: 14,
  cap_ipc_owner: 15,
  cap_sys_module: 16,
  cap_sys_rawio: 17,
  cap_sys_chroot: 18,
  cap_sys_ptrace: 19,
  cap_sys_pacct: 20,
  cap_sys_admin: 21,
  cap_sys_boot: 22,
  cap_sys_nice: 23,
  cap_sys_resource: 24,
  cap_sys_time: 25,
  cap_sys_tty_config: 26,
  cap_mknod: 27,
  cap_lease: 28,
  cap_audit_write: 29,
  cap_audit_control: 30,
  cap_setfcap: 31,
  cap_mac_override: 32,
  cap_mac_admin: 33,
  cap_syslog: 34,
  cap_wake_alarm: 35,
  cap_block_suspend: 36,
  cap_audit_read: 37,
  cap_perfmon: 38,
  cap_bpf: 39,
  cap_checkpoint_restore: 40,
}

/**
 * A `security.capability` xattr value (VFS_CAP_REVISION_2, 20 bytes LE), as
 * `setcap` writes it.
 *
 * @param caps - capability names (`cap_net_raw`, …) and optionally `'e'` to set
 *   the effective flag. `['cap_net_raw', 'e']` gives the bytes of `cap_net_raw=ep`;
 *   every capability goes into the permitted set.
 */
export function fileCapability(caps: string[]): Buffer {
  const VFS_CAP_REVISION_2 = 0x02000000
  const VFS_CAP_FLAGS_EFFECTIVE = 0x000001
  let magic = VFS_CAP_REVISION_2
  let low = 0
  let high = 0
  for (const cap of caps) {
    if (cap === 'e') {
      magic |= VFS_CAP_FLAGS_EFFECTIVE
      continue
    }
    const bit = CAPABILITIES[cap.toLowerCase()]
    if (bit === undefined) throw new Error(`fileCapability: unknown capability ${cap}`)
    if (bit < 32) low |= 1 << bit
    else high |= 1 << (bit - 32)
  }
  const value = Buffer.alloc(20)
  value.writeUInt32LE(magic >>> 0, 0)
  value.writeUInt32LE(low >>> 0, 4) // permitted, low word
  value.writeUInt32LE(0, 8) // inheritable, low word
  value.writeUInt32LE(high >>> 0, 12) // permitted, high word
  value.writeUInt32LE(0, 16) // inheritable, high word
  return value
}

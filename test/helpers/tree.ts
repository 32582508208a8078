/**
 * The oracle comparison: snapshot a directory tree (type, mode, owner, size,
 * content hash, link target, mtime, xattrs, hardlink groups) and diff two
 * snapshots; and `umoci unpack` as an independent reference unpacker.
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {lstat, mkdtemp, readdir, readlink} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type {Stats} from 'node:fs'
import {exec, execBuffer} from './exec.js'
import {requireTools} from './tools.js'

/** Kind of a file system node. */
export type NodeType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'

/** What {@link snapshotTree} records for one path. */
export interface NodeInfo {
  type: NodeType
  /** Permission bits incl. setuid/setgid/sticky (07777). */
  mode: number
  uid: number
  gid: number
  /** Regular files only. */
  size?: number
  /** Regular files only: hex sha256 of the content. */
  sha256?: string
  /** Symlinks only. */
  target?: string
  /** Devices only: `major:minor`. */
  rdev?: string
  /** Non-directories only: mtime in ms, truncated to whole seconds. */
  mtimeMs?: number
  /** Extended attributes, name → hex of the value bytes (no `0x`). */
  xattrs: Record<string, string>
  /** When the inode has more than one path in the tree: the first of them (sorted), shared by all. */
  hardlink?: string
}

/** Options for {@link snapshotTree}. */
export interface SnapshotOptions {
  /** Leave out paths (relative, no leading `/`, e.g. `etc/hosts`) for which this returns true; a directory's subtree goes too. */
  exclude?: (rel: string) => boolean
}

function nodeType(st: Stats): NodeType {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return 'socket'
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Undo getfattr's escaping of file names (`\ooo` octal for control bytes and `\`). */
function unescapeGetfattr(raw: Buffer): string {
  const bytes: number[] = []
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (c === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8))
      i += 3
    } else {
      bytes.push(c)
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

/**
 * Parse `getfattr -d -m - -e hex --absolute-names` output.
 *
 * @returns absolute path → (xattr name → hex value)
 */
export function parseGetfattr(output: Buffer): Map<string, Record<string, string>> {
  const result = new Map<string, Record<string, string>>()
  let current: Record<string, string> | undefined
  let start = 0
  while (start < output.length) {
    let end = output.indexOf(0x0a, start)
    if (end === -1) end = output.length
    const line = output.subarray(start, end)
    start = end + 1
    if (line.length === 0) continue
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      current = {}
      result.set(unescapeGetfattr(line.subarray(8)), current)
      continue
    }
    const text = line.toString('latin1')
    const eq = text.indexOf('=')
    if (current === undefined || eq === -1) {
      // A name without a value is an empty attribute.
      if (current !== undefined && eq === -1) current[text] = ''
      continue
    }
    const value = text.slice(eq + 1)
    if (!value.startsWith('0x')) throw new Error(`getfattr: expected a hex value, got ${text}`)
    current[text.slice(0, eq)] = value.slice(2).toLowerCase()
  }
  return result
}

/**
 * Snapshot every node under `dir` (not `dir` itself), keyed by relative path
 * without a leading `/` (`bin/busybox`). Xattrs are read in one batched
 * `getfattr -R -P -h -d -m - -e hex --absolute-names DIR` call.
 */
export async function snapshotTree(dir: string, opts: SnapshotOptions = {}): Promise<Map<string, NodeInfo>> {
  requireTools('getfattr')
  const root = path.resolve(dir)
  const nodes = new Map<string, NodeInfo>()
  const inodes = new Map<string, string[]>()

  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel ? path.join(root, rel) : root)).sort()
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name
      if (opts.exclude?.(childRel)) continue
      const abs = path.join(root, childRel)
      const st = await lstat(abs)
      const type = nodeType(st)
      const info: NodeInfo = {type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs: {}}
      if (type === 'file') {
        info.size = st.size
        info.sha256 = await hashFile(abs)
      }
      if (type === 'symlink') info.target = await readlink(abs)
      if (type === 'char' || type === 'block') info.rdev = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`
      if (type !== 'dir') info.mtimeMs = Math.floor(st.mtimeMs / 1000) * 1000
      if (type !== 'dir' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`
        inodes.set(key, [...(inodes.get(key) ?? []), childRel])
      }
      nodes.set(childRel, info)
      if (type === 'dir') await walk(childRel)
    }
  }
  await walk('')

  for (const paths of inodes.values()) {
    if (paths.length < 2) continue
    const id = [...paths].sort()[0]!
    for (const p of paths) nodes.get(p)!.hardlink = id
  }

  const output = await execBuffer('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], {env: {LC_ALL: 'C'}})
  for (const [abs, xattrs] of parseGetfattr(output)) {
    if (abs === root) continue
    const rel = path.relative(root, abs)
    const node = nodes.get(rel)
    if (node) node.xattrs = xattrs // excluded paths are simply not there
  }
  return nodes
}

/**
 * The same snapshot as CernVM-FS publishes it: every hardlink split into separate files
 * (link count 1, equal content), which is what a 2.12 repository makes of hardlinks in
 * transactions and ingests alike. Directory mtimes go too (the repository's own writes
 * touch them).
 */
export function asPublishedToCvmfs(tree: Map<string, NodeInfo>): Map<string, NodeInfo> {
  return new Map([...tree].map(([rel, info]) => [rel, {...info, hardlink: undefined, mtimeMs: info.type === 'dir' ? undefined : info.mtimeMs}]))
}

function show(field: keyof NodeInfo, value: unknown): string {
  if (value === undefined) return '(none)'
  if (field === 'mode') return (value as number).toString(8).padStart(4, '0')
  if (field === 'mtimeMs') return new Date(value as number).toISOString()
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/**
 * Human-readable differences between two snapshots, `a` being the expected
 * one: paths missing from `b`, extra paths in `b`, and per-field differences
 * (`bin/ping: mode 04755 != 0755`). Empty when they are equal.
 */
export function diffTrees(a: Map<string, NodeInfo>, b: Map<string, NodeInfo>): string[] {
  const out: string[] = []
  const fields: (keyof NodeInfo)[] = ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'target', 'rdev', 'mtimeMs', 'hardlink']
  for (const rel of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(rel)
    const y = b.get(rel)
    if (!y) {
      out.push(`${rel}: missing (expected ${x!.type})`)
      continue
    }
    if (!x) {
      out.push(`${rel}: unexpected ${y.type}`)
      continue
    }
    for (const field of fields) {
      if (x[field] !== y[field]) out.push(`${rel}: ${field} ${show(field, x[field])} != ${show(field, y[field])}`)
    }
    for (const name of [...new Set([...Object.keys(x.xattrs), ...Object.keys(y.xattrs)])].sort()) {
      if (x.xattrs[name] !== y.xattrs[name]) out.push(`${rel}: xattr ${name} ${x.xattrs[name] ?? '(none)'} != ${y.xattrs[name] ?? '(none)'}`)
    }
  }
  return out
}

/**
 * Unpack `layoutDir:tag` with the real `umoci unpack` (as root, so owners,
 * devices and xattrs are kept), as an independent reference.
 *
 * @param bundleDir - where the bundle goes (missing or empty); default a new
 *   temp dir. The caller removes it: `rm(path.dirname(rootfs), {recursive: true})`.
 * @returns the bundle's `rootfs` directory.
 */
export async function umociUnpack(layoutDir: string, tag: string, bundleDir?: string): Promise<string> {
  requireTools('umoci')
  const bundle = bundleDir ?? (await mkdtemp(path.join(os.tmpdir(), 'umoci-bundle-')))
  await exec('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, bundle])
  return path.join(bundle, 'rootfs')
}

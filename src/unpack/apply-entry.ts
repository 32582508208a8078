/**
 * Apply tar entries of one layer to the tree being merged, with OCI layer semantics:
 * upper entries replace lower ones (a directory over a directory merges), `.wh.<name>`
 * deletes a lower `<name>`, `.wh..wh..opq` drops a directory's lower children, and
 * whiteout files never appear in the result. Every name goes through the hostile
 * guard (entry-path.ts) and every parent through the root-scoped resolver (root-fs.ts).
 *
 * File system calls are synchronous and optimistic (create first; only on EEXIST
 * look at what is there): per entry that is one or two syscalls instead of a
 * thread-pool round trip for each of five. The process umask is 0 while merging
 * (merge.ts), so files are created with their final permission bits.
 */
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs'
import {dirname, join} from 'node:path'

import {VerificationError} from '../errors.js'
import {run} from '../exec.js'
import type {Logger} from '../log.js'
import {classifyWhiteout, entryComponents, hostileEntry} from './entry-path.js'
import {RootFs} from './root-fs.js'
import {entryXattrs, type EntryHeader} from './tar-reader.js'
import type {XattrTable} from './xattrs.js'

const SPECIAL_BITS = 0o7000

interface DirMeta {
  mode: number
  uid: number
  gid: number
  mtime: Date
}

/** State that lives across all layers of one image. */
export class MergeState {
  readonly fs: RootFs
  /** Directory metadata, applied last (children change a directory's mtime; a 0555 dir must stay writable while we fill it). */
  readonly dirs = new Map<string, DirMeta>()
  readonly xattrs: XattrTable = new Map()
  /** Entries not created (device nodes and FIFOs when not root). */
  readonly skipped: string[] = []
  entries = 0
  files = 0
  bytes = 0

  constructor(
    readonly root: string,
    readonly isRoot: boolean,
    readonly logger: Logger,
  ) {
    this.fs = new RootFs(root)
  }

  /** Drop bookkeeping for a removed subtree. */
  forget(path: string): void {
    const prefix = `${path}/`
    for (const table of [this.dirs, this.xattrs] as Map<string, unknown>[]) {
      table.delete(path)
      for (const key of table.keys()) if (key.startsWith(prefix)) table.delete(key)
    }
  }

  /** Whether an owner must be set (a root process creates files as 0:0 already). */
  needsChown(uid: number, gid: number): boolean {
    return this.isRoot && (uid !== 0 || gid !== 0)
  }
}

/** One entry as the applier sees it: its header and its data stream. */
export interface TarEntry extends AsyncIterable<Buffer> {
  header: EntryHeader
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry) {
    // discard
  }
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code
}

/** Applies the entries of one layer. */
export class LayerApplier {
  /** Paths this layer wrote, and their ancestors: what an opaque marker must keep. */
  private readonly touched = new Set<string>()

  /**
   * @param hasLower whether anything lies below this layer. The bottom layer of an
   *   image has nothing for its whiteouts to hide, so it keeps no record of what it
   *   wrote (on a large base layer that record is most of the merge's memory).
   */
  constructor(
    private readonly state: MergeState,
    private readonly label: string,
    private readonly hasLower = true,
  ) {}

  async apply(entry: TarEntry): Promise<void> {
    const {header} = entry
    const state = this.state
    state.entries++
    const components = entryComponents(header.name, this.label)
    if (components.length === 0) return drain(entry) // the root itself keeps the staging directory's metadata
    const base = components[components.length - 1]!
    const parentComponents = components.slice(0, -1)
    const whiteout = classifyWhiteout(base)
    if (whiteout.kind === 'invalid') {
      throw hostileEntry('E_HOSTILE_WHITEOUT', header.name, this.label, 'is a whiteout of its own directory')
    }
    if (whiteout.kind !== 'none' && !this.hasLower) {
      // Nothing below to hide; the directory of an opaque marker still exists in the image.
      if (whiteout.kind === 'opaque') state.fs.resolveDir(parentComponents, header.name, this.label)
      return drain(entry)
    }
    if (whiteout.kind === 'opaque') {
      const dir = state.fs.abs(state.fs.resolveDir(parentComponents, header.name, this.label))
      this.markTouched(dir)
      this.dropLowerChildren(dir)
      return drain(entry)
    }
    if (whiteout.kind === 'whiteout') {
      const real = state.fs.resolveExisting([...parentComponents, whiteout.target], header.name, this.label)
      if (real) {
        const path = state.fs.abs(real)
        // A layer's whiteouts hide lower layers only, never its own entries.
        if (!this.touched.has(path) && lstatSync(path, {throwIfNoEntry: false})) this.remove(path)
      }
      return drain(entry)
    }

    const path = join(state.fs.abs(state.fs.resolveDir(parentComponents, header.name, this.label)), base)
    if (this.hasLower) this.markTouched(path)
    const type = header.type ?? 'file'
    switch (type) {
      case 'directory':
        this.directory(path, header)
        await drain(entry)
        break
      case 'file':
      case 'contiguous-file':
        await this.file(path, entry)
        break
      case 'symlink':
        this.replacing(path, () => symlinkSync(header.linkname ?? '', path))
        if (state.needsChown(header.uid ?? 0, header.gid ?? 0)) lchownSync(path, header.uid ?? 0, header.gid ?? 0)
        lutimesSync(path, header.mtime ?? new Date(0), header.mtime ?? new Date(0))
        await drain(entry)
        break
      case 'link':
        this.hardlink(path, header)
        await drain(entry)
        return
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await this.special(path, header, type)
        await drain(entry)
        break
      default:
        throw new VerificationError(`layer ${this.label}: entry ${JSON.stringify(header.name)} has an unsupported type ${String(type)}`, {
          code: 'E_UNSUPPORTED_ENTRY',
        })
    }
    this.recordXattrs(path, header)
  }

  /**
   * Run `create`; if something is in the way (EEXIST), remove it — a whole subtree
   * for a directory, since an upper non-directory replaces it — and run it again.
   */
  private replacing(path: string, create: () => void): void {
    try {
      create()
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error
      this.remove(path)
      create()
    }
  }

  private directory(path: string, header: EntryHeader): void {
    try {
      mkdirSync(path, {mode: 0o700})
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error
      // A directory over a directory merges; over anything else it replaces.
      if (!lstatSync(path).isDirectory()) {
        this.remove(path)
        mkdirSync(path, {mode: 0o700})
      }
    }
    this.state.dirs.set(path, {mode: (header.mode ?? 0o755) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: header.mtime ?? new Date(0)})
    this.recordXattrs(path, header)
  }

  private markTouched(path: string): void {
    const root = this.state.root
    for (let p = path; p.length > root.length && !this.touched.has(p); p = dirname(p)) this.touched.add(p)
  }

  private recordXattrs(path: string, header: EntryHeader): void {
    const xattrs = entryXattrs(header)
    if (!xattrs) return
    for (const name of xattrs.keys()) {
      if (!this.state.isRoot && !name.startsWith('user.')) {
        this.state.logger.warn(`not running as root: extended attribute ${name} of /${header.name} is not kept`)
        xattrs.delete(name)
      }
    }
    if (xattrs.size > 0) this.state.xattrs.set(path, xattrs)
  }

  /** Remove a path (a whole subtree for a directory) and forget its bookkeeping. */
  private remove(path: string): void {
    rmSync(path, {recursive: true, force: true})
    this.state.forget(path)
    this.state.fs.invalidate()
  }

  /** Opaque directory: delete every child a lower layer put there. */
  private dropLowerChildren(dir: string): void {
    for (const child of readdirSync(dir, {withFileTypes: true})) {
      const path = join(dir, child.name)
      if (!this.touched.has(path)) this.remove(path)
      else if (child.isDirectory()) this.dropLowerChildren(path)
    }
  }

  private async file(path: string, entry: TarEntry): Promise<void> {
    const {header} = entry
    const state = this.state
    const mode = (header.mode ?? 0o644) & 0o7777
    let fd = -1
    this.replacing(path, () => {
      fd = openSync(path, 'wx', mode & 0o777)
    })
    try {
      for await (const chunk of entry) {
        for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset)
      }
      const uid = header.uid ?? 0
      const gid = header.gid ?? 0
      const chowned = state.needsChown(uid, gid)
      if (chowned) fchownSync(fd, uid, gid)
      // chown clears setuid/setgid; the special bits are never given to open().
      if (chowned || mode & SPECIAL_BITS) fchmodSync(fd, mode)
      const mtime = header.mtime ?? new Date(0)
      futimesSync(fd, mtime, mtime)
    } finally {
      closeSync(fd)
    }
    state.files++
    state.bytes += header.size ?? 0
  }

  private hardlink(path: string, header: EntryHeader): void {
    const linkname = header.linkname ?? ''
    const components = entryComponents(linkname, this.label, 'hardlink target')
    const real = this.state.fs.resolveExisting(components, header.name, this.label)
    const target = real ? this.state.fs.abs(real) : undefined
    const stat = target ? lstatSync(target, {throwIfNoEntry: false}) : undefined
    if (!target || !stat) {
      throw new VerificationError(
        `layer ${this.label}: hardlink ${JSON.stringify(header.name)} points to ${JSON.stringify(linkname)}, which the image does not contain`,
        {code: 'E_HARDLINK_TARGET_MISSING'},
      )
    }
    if (stat.isDirectory()) {
      throw hostileEntry('E_HOSTILE_HARDLINK_DIR', header.name, this.label, `is a hardlink to the directory ${JSON.stringify(linkname)}`)
    }
    if (target !== path) this.replacing(path, () => linkSync(target, path))
  }

  private async special(path: string, header: EntryHeader, type: 'character-device' | 'block-device' | 'fifo'): Promise<void> {
    if (!this.state.isRoot) {
      this.state.skipped.push(`/${header.name}`)
      return
    }
    if (lstatSync(path, {throwIfNoEntry: false})) this.remove(path)
    const kind = type === 'fifo' ? ['p'] : [type === 'block-device' ? 'b' : 'c', String(header.devmajor ?? 0), String(header.devminor ?? 0)]
    await run('mknod', [path, ...kind], {logger: this.state.logger})
    lchownSync(path, header.uid ?? 0, header.gid ?? 0)
    chmodSync(path, (header.mode ?? 0o644) & 0o7777)
    const mtime = header.mtime ?? new Date(0)
    lutimesSync(path, mtime, mtime)
  }
}

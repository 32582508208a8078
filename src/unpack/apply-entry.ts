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
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs'
import {dirname, join} from 'node:path'

import {VerificationError} from '../errors.js'
import {run} from '../exec.js'
import type {Logger} from '../log.js'
import {classifyWhiteout, entryComponents, hostileEntry} from './entry-path.js'
import {RootFs} from './root-fs.js'
import {forEachFile} from './tree-bytes.js'
import {entryXattrs, type TarHeader} from './tar-parser.js'
import type {XattrTable} from './xattrs.js'

const SPECIAL_BITS = 0o7000

interface DirMeta {
  mode: number
  uid: number
  gid: number
  /** Seconds since the epoch. */
  mtime: number
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
  /**
   * Bytes of file content the tree holds, each inode once: files made add their size,
   * files removed for good (their last link) take it away. A merge started from a clone
   * starts from the bytes the clone holds (see {@link clone}).
   */
  treeBytes = 0
  /**
   * Set when the merge started from a clone of a published root (clone-tree.ts), whose
   * files also keep their links in that root: `nlink` alone cannot say when one leaves
   * this tree. `created` holds the files the merge made (all their links are in this
   * tree); a cloned file whose base holds it once has nlink 2 and leaves with its name
   * here. Anything else (hardlinks within the base, a new link to a cloned file) makes
   * the count inexact (`exact` false), and the tree is measured afterwards.
   */
  clone?: {created: Set<string>; exact: boolean}

  constructor(
    readonly root: string,
    readonly isRoot: boolean,
    readonly logger: Logger,
  ) {
    this.fs = new RootFs(root)
  }

  /** Whether removing the link `path` of a regular file frees its bytes from {@link treeBytes}. */
  freesBytes(path: string, stat: Stats): boolean {
    const clone = this.clone
    if (!clone || clone.created.has(path)) return stat.nlink === 1
    if (stat.nlink !== 2) clone.exact = false
    return stat.nlink === 2
  }

  /** What removing the subtree at `dir` takes from {@link treeBytes}. */
  subtreeBytes(dir: string): number {
    let bytes = 0
    // Inodes with other links: freed only if all their links are in the subtree.
    const shared = new Map<string, {size: number; nlink: number; seen: number}>()
    forEachFile(dir, (stat, path) => {
      if (this.clone && !this.clone.created.has(path)) {
        if (this.freesBytes(path, stat)) bytes += stat.size
      } else if (stat.nlink === 1) bytes += stat.size
      else {
        const key = `${stat.dev}:${stat.ino}`
        const inode = shared.get(key) ?? {size: stat.size, nlink: stat.nlink, seen: 0}
        inode.seen++
        shared.set(key, inode)
      }
    })
    for (const inode of shared.values()) if (inode.seen === inode.nlink) bytes += inode.size
    return bytes
  }

  /** Drop bookkeeping for a removed subtree. */
  forget(path: string): void {
    const prefix = `${path}/`
    for (const table of [this.dirs, this.xattrs] as Map<string, unknown>[]) {
      table.delete(path)
      for (const key of table.keys()) if (key.startsWith(prefix)) table.delete(key)
    }
    if (this.clone) for (const key of this.clone.created) if (key.startsWith(prefix)) this.clone.created.delete(key)
  }

  /** Whether an owner must be set (a root process creates files as 0:0 already). */
  needsChown(uid: number, gid: number): boolean {
    return this.isRoot && (uid !== 0 || gid !== 0)
  }
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code
}

/** The regular file being written: its descriptor, and what to set when its data is in. */
interface OpenFile {
  fd: number
  path: string
  header: TarHeader
}

/**
 * Applies the entries of one layer, event by event as the tar parser hands them out:
 * {@link header} for each entry, then {@link data} with its bytes (regular files
 * only) and {@link end}. All synchronous but for the rare entry that runs a program
 * (mknod), whose `header` returns a promise to await before the next event.
 */
export class LayerApplier {
  /** Paths this layer wrote, and their ancestors: what an opaque marker must keep. */
  private readonly touched = new Set<string>()
  private file: OpenFile | undefined

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

  header(header: TarHeader): Promise<void> | undefined {
    const state = this.state
    state.entries++
    const components = entryComponents(header.name, this.label)
    if (components.length === 0) return undefined // the root itself keeps the staging directory's metadata
    const base = components[components.length - 1]!
    const parentComponents = components.slice(0, -1)
    const whiteout = classifyWhiteout(base)
    if (whiteout.kind === 'invalid') {
      throw hostileEntry('E_HOSTILE_WHITEOUT', header.name, this.label, 'is a whiteout of its own directory')
    }
    if (whiteout.kind !== 'none' && !this.hasLower) {
      // Nothing below to hide; the directory of an opaque marker still exists in the image.
      if (whiteout.kind === 'opaque') state.fs.resolveDir(parentComponents, header.name, this.label)
      return undefined
    }
    if (whiteout.kind === 'opaque') {
      const dir = state.fs.resolveDirPath(parentComponents, header.name, this.label)
      this.markTouched(dir)
      this.dropLowerChildren(dir)
      return undefined
    }
    if (whiteout.kind === 'whiteout') {
      const real = state.fs.resolveExisting([...parentComponents, whiteout.target], header.name, this.label)
      if (real) {
        const path = state.fs.abs(real)
        // A layer's whiteouts hide lower layers only, never its own entries.
        if (!this.touched.has(path)) this.remove(path)
      }
      return undefined
    }

    const path = `${state.fs.resolveDirPath(parentComponents, header.name, this.label)}/${base}`
    if (this.hasLower) this.markTouched(path)
    switch (header.type) {
      case 'directory':
        this.directory(path, header)
        return undefined
      case 'file':
      case 'contiguous-file':
        this.openFile(path, header)
        return undefined
      case 'symlink':
        this.replacing(path, () => symlinkSync(header.linkname ?? '', path))
        if (state.needsChown(header.uid, header.gid)) lchownSync(path, header.uid, header.gid)
        lutimesSync(path, header.mtime, header.mtime)
        break
      case 'link':
        this.hardlink(path, header)
        return undefined
      case 'character-device':
      case 'block-device':
      case 'fifo':
        return this.special(path, header, header.type).then((made) => {
          if (made) this.recordXattrs(path, header)
        })
      default:
        throw new VerificationError(`layer ${this.label}: entry ${JSON.stringify(header.name)} has an unsupported type ${JSON.stringify(header.typeflag)}`, {
          code: 'E_UNSUPPORTED_ENTRY',
        })
    }
    this.recordXattrs(path, header)
    return undefined
  }

  /** Bytes of the regular file being written (other entries have none). */
  data(bytes: Buffer): void {
    const fd = this.file?.fd
    if (fd === undefined) return
    for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset)
  }

  /** The entry's data is complete: finish the regular file being written. */
  end(): void {
    const file = this.file
    if (!file) return
    this.file = undefined
    const {fd, header} = file
    const state = this.state
    try {
      const mode = header.mode & 0o7777
      const chowned = state.needsChown(header.uid, header.gid)
      if (chowned) fchownSync(fd, header.uid, header.gid)
      // chown clears setuid/setgid; the special bits are never given to open().
      if (chowned || mode & SPECIAL_BITS) fchmodSync(fd, mode)
      futimesSync(fd, header.mtime, header.mtime)
    } finally {
      closeSync(fd)
    }
    state.files++
    state.bytes += header.size
    state.treeBytes += header.size
    state.clone?.created.add(file.path)
    this.recordXattrs(file.path, header)
  }

  /** After an error: close the file being written. */
  abort(): void {
    if (this.file) closeSync(this.file.fd)
    this.file = undefined
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

  private directory(path: string, header: TarHeader): void {
    try {
      mkdirSync(path, {mode: 0o700})
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error
      // A directory over a directory merges; over anything else it replaces.
      const stat = lstatSync(path)
      if (!stat.isDirectory()) {
        this.remove(path, stat)
        mkdirSync(path, {mode: 0o700})
      }
    }
    this.state.dirs.set(path, {mode: header.mode & 0o7777, uid: header.uid, gid: header.gid, mtime: header.mtime})
    this.recordXattrs(path, header)
  }

  private markTouched(path: string): void {
    const root = this.state.root
    for (let p = path; p.length > root.length && !this.touched.has(p); p = dirname(p)) this.touched.add(p)
  }

  private recordXattrs(path: string, header: TarHeader): void {
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
  private remove(path: string, stat: Stats | undefined = lstatSync(path, {throwIfNoEntry: false})): void {
    const state = this.state
    if (!stat) return
    if (stat.isDirectory()) {
      state.treeBytes -= state.subtreeBytes(path)
      rmSync(path, {recursive: true, force: true})
      state.forget(path)
      state.fs.invalidate()
      return
    }
    if (stat.isFile() && state.freesBytes(path, stat)) state.treeBytes -= stat.size
    state.clone?.created.delete(path)
    unlinkSync(path)
    state.xattrs.delete(path)
    // Resolved parents may have gone through a symlink; nothing else changes them.
    if (stat.isSymbolicLink()) state.fs.invalidate()
  }

  /** Opaque directory: delete every child a lower layer put there. */
  private dropLowerChildren(dir: string): void {
    for (const child of readdirSync(dir, {withFileTypes: true})) {
      const path = join(dir, child.name)
      if (!this.touched.has(path)) this.remove(path)
      else if (child.isDirectory()) this.dropLowerChildren(path)
    }
  }

  private openFile(path: string, header: TarHeader): void {
    const mode = header.mode & 0o7777
    let fd = -1
    this.replacing(path, () => {
      fd = openSync(path, 'wx', mode & 0o777)
    })
    this.file = {fd, path, header}
  }

  private hardlink(path: string, header: TarHeader): void {
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
    if (target === path) return
    this.replacing(path, () => linkSync(target, path))
    const clone = this.state.clone
    if (clone) {
      // A new name for a cloned file: its links are no longer told apart by nlink.
      if (!clone.created.has(target)) clone.exact = false
      clone.created.add(path)
    }
  }

  /** Make a device node or FIFO (root only: it is skipped otherwise); whether it was made. */
  private async special(path: string, header: TarHeader, type: 'character-device' | 'block-device' | 'fifo'): Promise<boolean> {
    if (!this.state.isRoot) {
      this.state.skipped.push(`/${header.name}`)
      return false
    }
    this.remove(path)
    const kind = type === 'fifo' ? ['p'] : [type === 'block-device' ? 'b' : 'c', String(header.devmajor), String(header.devminor)]
    await run('mknod', [path, ...kind], {logger: this.state.logger})
    lchownSync(path, header.uid, header.gid)
    chmodSync(path, header.mode & 0o7777)
    lutimesSync(path, header.mtime, header.mtime)
    return true
  }
}

/**
 * Apply tar entries of one layer to the tree being merged, with OCI layer semantics:
 * upper entries replace lower ones (a directory over a directory merges), `.wh.<name>`
 * deletes a lower `<name>`, `.wh..wh..opq` drops a directory's lower children, and
 * whiteout files never appear in the result. Every name goes through the hostile
 * guard (entry-path.ts) and every parent through the root-scoped resolver (root-fs.ts).
 */
import {chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, type FileHandle} from 'node:fs/promises'
import {createWriteStream} from 'node:fs'
import {dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {VerificationError} from '../errors.js'
import {run} from '../exec.js'
import type {Logger} from '../log.js'
import {classifyWhiteout, entryComponents, hostileEntry} from './entry-path.js'
import {RootFs} from './root-fs.js'
import {entryXattrs, type EntryHeader} from './tar-reader.js'
import type {XattrTable} from './xattrs.js'

/** Files up to this size are written in one call rather than streamed. */
const SMALL_FILE = 1 << 20

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
}

/** One entry as the applier sees it: its header and its data stream. */
export interface TarEntry extends AsyncIterable<Buffer> {
  header: EntryHeader
  resume(): unknown
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry) {
    // discard
  }
}

async function lstatOrNull(path: string) {
  try {
    return await lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

/** Applies the entries of one layer. */
export class LayerApplier {
  /** Paths this layer wrote, and their ancestors: what an opaque marker must keep. */
  private readonly touched = new Set<string>()

  constructor(
    private readonly state: MergeState,
    private readonly label: string,
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
    if (whiteout.kind === 'opaque') {
      const dir = state.fs.abs(await state.fs.resolveDir(parentComponents, header.name, this.label))
      this.markTouched(dir)
      await this.dropLowerChildren(dir)
      return drain(entry)
    }
    if (whiteout.kind === 'whiteout') {
      const real = await state.fs.resolveExisting([...parentComponents, whiteout.target], header.name, this.label)
      if (real) {
        const path = state.fs.abs(real)
        // A layer's whiteouts hide lower layers only, never its own entries.
        if (!this.touched.has(path)) await this.remove(path)
      }
      return drain(entry)
    }

    const parent = state.fs.abs(await state.fs.resolveDir(parentComponents, header.name, this.label))
    const path = join(parent, base)
    this.markTouched(path)
    const existing = await lstatOrNull(path)
    const type = header.type ?? 'file'

    if (type === 'directory') {
      if (existing && !existing.isDirectory()) await this.remove(path)
      if (!existing || !existing.isDirectory()) await mkdir(path, {mode: 0o700})
      state.dirs.set(path, this.meta(header))
      this.recordXattrs(path, header)
      return drain(entry)
    }

    if (existing) await this.remove(path, existing.isDirectory() || existing.isSymbolicLink())

    switch (type) {
      case 'file':
      case 'contiguous-file':
        await this.writeFile(path, entry)
        break
      case 'symlink':
        await symlink(header.linkname ?? '', path)
        if (state.isRoot) await lchown(path, header.uid ?? 0, header.gid ?? 0)
        await lutimes(path, header.mtime ?? new Date(0), header.mtime ?? new Date(0))
        await drain(entry)
        break
      case 'link':
        await this.hardlink(path, header)
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

  private meta(header: EntryHeader): DirMeta {
    return {mode: (header.mode ?? 0o755) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: header.mtime ?? new Date(0)}
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
  private async remove(path: string, invalidate = true): Promise<void> {
    await rm(path, {recursive: true, force: true})
    this.state.forget(path)
    if (invalidate) this.state.fs.invalidate()
  }

  /** Opaque directory: delete every child a lower layer put there. */
  private async dropLowerChildren(dir: string): Promise<void> {
    for (const child of await readdir(dir, {withFileTypes: true})) {
      const path = join(dir, child.name)
      if (!this.touched.has(path)) await this.remove(path)
      else if (child.isDirectory()) await this.dropLowerChildren(path)
    }
  }

  private async writeFile(path: string, entry: TarEntry): Promise<void> {
    const {header} = entry
    const state = this.state
    const size = header.size ?? 0
    if (size <= SMALL_FILE) {
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk)
      const handle = await open(path, 'wx', 0o600)
      try {
        if (size > 0) await handle.writeFile(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
        await this.finishFile(handle, header)
      } finally {
        await handle.close()
      }
    } else {
      await pipeline(entry, createWriteStream(path, {flags: 'wx', mode: 0o600, highWaterMark: 1 << 20}))
      const handle = await open(path, 'r+')
      try {
        await this.finishFile(handle, header)
      } finally {
        await handle.close()
      }
    }
    state.files++
    state.bytes += size
  }

  private async finishFile(handle: FileHandle, header: EntryHeader): Promise<void> {
    // chown first: it clears setuid/setgid, which chmod then sets.
    if (this.state.isRoot) await handle.chown(header.uid ?? 0, header.gid ?? 0)
    await handle.chmod((header.mode ?? 0o644) & 0o7777)
    const mtime = header.mtime ?? new Date(0)
    await handle.utimes(mtime, mtime)
  }

  private async hardlink(path: string, header: EntryHeader): Promise<void> {
    const linkname = header.linkname ?? ''
    const components = entryComponents(linkname, this.label, 'hardlink target')
    const real = await this.state.fs.resolveExisting(components, header.name, this.label)
    const target = real ? this.state.fs.abs(real) : undefined
    const stat = target ? await lstatOrNull(target) : null
    if (!target || !stat) {
      throw new VerificationError(
        `layer ${this.label}: hardlink ${JSON.stringify(header.name)} points to ${JSON.stringify(linkname)}, which the image does not contain`,
        {code: 'E_HARDLINK_TARGET_MISSING'},
      )
    }
    if (stat.isDirectory()) {
      throw hostileEntry('E_HOSTILE_HARDLINK_DIR', header.name, this.label, `is a hardlink to the directory ${JSON.stringify(linkname)}`)
    }
    if (target !== path) await link(target, path)
  }

  private async special(path: string, header: EntryHeader, type: 'character-device' | 'block-device' | 'fifo'): Promise<void> {
    if (!this.state.isRoot) {
      this.state.skipped.push(`/${header.name}`)
      return
    }
    const kind = type === 'fifo' ? ['p'] : [type === 'block-device' ? 'b' : 'c', String(header.devmajor ?? 0), String(header.devminor ?? 0)]
    await run('mknod', [path, ...kind], {logger: this.state.logger})
    await lchown(path, header.uid ?? 0, header.gid ?? 0)
    await chmod(path, (header.mode ?? 0o644) & 0o7777)
    const mtime = header.mtime ?? new Date(0)
    await lutimes(path, mtime, mtime)
  }
}


/**
 * Lay out a directory tree from {@link TarEntry} lists without any unpacker,
 * e.g. a busybox rootfs for `podman run --rootfs DIR`. For trusted fixtures
 * only: names that leave `dir` are refused.
 */
import {chmod, chown, lchown, link, lutimes, mkdir, symlink, utimes, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {exec} from './exec.js'
import {DEFAULT_MTIME, type TarEntry} from './tar.js'
import {requireTools} from './tools.js'

function inside(dir: string, name: string): string {
  const target = path.resolve(dir, name.replace(/^\/+/, ''))
  if (target !== dir && !target.startsWith(dir + path.sep)) throw new Error(`writeRootfs: ${name} leaves ${dir}`)
  return target
}

/**
 * Create `entries` under `dir` (created if missing, then made mode 0755).
 * A repeated file name fails: nothing is overwritten. Owners, modes (incl.
 * setuid/sticky), mtimes and xattrs (via `setfattr`) are applied; directory
 * modes and mtimes last.
 */
export async function writeRootfs(dir: string, entries: TarEntry[]): Promise<void> {
  const root = path.resolve(dir)
  await mkdir(root, {recursive: true})
  // mkdtemp makes 0700 dirs; a rootfs root must be searchable by non-root
  // users (`podman run --user 1000` fails with "stat /bin/id: permission denied").
  // An entry named `./` overrides this.
  await chmod(root, 0o755)
  const dirs: {file: string; entry: TarEntry}[] = []
  for (const entry of entries) {
    const file = inside(root, entry.name)
    const type = entry.type ?? 'file'
    await mkdir(path.dirname(file), {recursive: true})
    switch (type) {
      case 'directory':
        await mkdir(file, {recursive: true})
        dirs.push({file, entry})
        break
      case 'file':
        await writeFile(file, entry.content ?? '', {flag: 'wx'})
        break
      case 'symlink':
        await symlink(entry.linkname ?? '', file)
        break
      case 'link':
        await link(inside(root, entry.linkname ?? ''), file)
        continue // a hardlink shares its target's metadata
      case 'fifo':
      case 'character-device':
      case 'block-device': {
        requireTools('mknod')
        const kind = type === 'fifo' ? ['p'] : [type === 'block-device' ? 'b' : 'c', String(entry.devmajor ?? 0), String(entry.devminor ?? 0)]
        await exec('mknod', [file, ...kind])
        break
      }
    }
    if (type === 'directory') continue
    const uid = entry.uid ?? 0
    const gid = entry.gid ?? 0
    const mtime = entry.mtime ?? DEFAULT_MTIME
    if (type === 'symlink') {
      await lchown(file, uid, gid)
    } else {
      await chown(file, uid, gid)
      await chmod(file, entry.mode ?? 0o644) // after chown: chown clears setuid/setgid
    }
    await setXattrs(file, entry)
    if (type === 'symlink') await lutimes(file, mtime, mtime)
    else await utimes(file, mtime, mtime)
  }
  // Deepest first, so setting a parent's mtime is not undone by its children.
  dirs.sort((a, b) => b.file.length - a.file.length)
  for (const {file, entry} of dirs) {
    await chown(file, entry.uid ?? 0, entry.gid ?? 0)
    await chmod(file, entry.mode ?? 0o755)
    await setXattrs(file, entry)
    const mtime = entry.mtime ?? DEFAULT_MTIME
    await utimes(file, mtime, mtime)
  }
}

async function setXattrs(file: string, entry: TarEntry): Promise<void> {
  const xattrs = Object.entries(entry.xattrs ?? {})
  if (xattrs.length === 0) return
  requireTools('setfattr')
  for (const [name, value] of xattrs) await exec('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, file])
}

/**
 * What a flat root needs beyond the image's own files to run read-only: the mount
 * points apptainer and podman bind over (DUCC adds `dev proc sys tmp var/tmp home
 * root etc`, `etc/hosts` and `etc/resolv.conf`), and what podman's `--rootfs` must find
 * when it cannot write to the root. Each is created only where the image has nothing at
 * that path, and never through a symlink: the image's own files always win.
 *
 * What podman needs (`podman: true`), measured with podman 4.3.1 and runc 1.1 (Debian
 * 12) as root, `podman run --rm [--network none|host] --rootfs RO /bin/sh -c 'echo ok'`
 * where RO is a read-only bind mount of a busybox root holding every item below but one:
 *
 * - missing `etc/mtab`: "creating /etc/mtab symlink: read-only file system" (podman
 *   creates it itself; anything at that path will do, even a dangling link);
 * - missing `etc`: "create /etc: read-only file system";
 * - missing `etc/hosts`, `etc/hostname`, `run` or `run/.containerenv`, `proc`, `sys`, `dev`:
 *   runc "error mounting … to rootfs" (it must create the missing mount target);
 * - missing `etc/resolv.conf`: the same with `--network host` (and the default network);
 *   with `--network none` podman mounts no resolv.conf;
 * - missing `etc/passwd`, `etc/group`, `tmp`, `var`, `home`, `root`: starts fine.
 *
 * On a root podman can write it creates what is missing itself.
 *
 * What apptainer 1.4.5 needs, measured the same way (`apptainer exec RO /bin/sh -c 'echo
 * ok'`, one path missing at a time) with `enable underlay = no` and `enable overlay = no`
 * in its configuration (with either of them, its default, it creates what is missing
 * itself): `dev` ("destination /dev doesn't exist in container") and, as root, `root`
 * (the home directory it binds); without `proc`, `sys`, `tmp`, `var/tmp`, `etc/hosts`,
 * `etc/resolv.conf` or `etc/localtime` it warns and skips that mount; without
 * `etc/passwd` and `etc/group` it warns that it cannot add the user to them.
 */
import {join} from 'node:path'

import {access, chmod, constants, lstat, mkdir, readlink, symlink, writeFile} from '../fs-calls.js'

/** Something publish adds to a flat root where the image has nothing at `path` (relative). */
export type RootItem = ({path: string; kind: 'dir'; mode: number} | {path: string; kind: 'file'; content: string; mode?: number} | {path: string; kind: 'symlink'; target: string}) & {
  /** podman 4.3 cannot start a read-only `--rootfs` without it (measured, see above). */
  podman?: true
}

export const MOUNT_POINTS: readonly RootItem[] = [
  {path: 'dev', kind: 'dir', mode: 0o755, podman: true},
  {path: 'proc', kind: 'dir', mode: 0o555, podman: true},
  {path: 'sys', kind: 'dir', mode: 0o555, podman: true},
  {path: 'tmp', kind: 'dir', mode: 0o1777},
  {path: 'var', kind: 'dir', mode: 0o755},
  {path: 'var/tmp', kind: 'dir', mode: 0o1777},
  {path: 'home', kind: 'dir', mode: 0o755},
  {path: 'root', kind: 'dir', mode: 0o700},
  {path: 'run', kind: 'dir', mode: 0o755, podman: true},
  {path: 'etc', kind: 'dir', mode: 0o755, podman: true},
  {path: 'etc/hosts', kind: 'file', content: '', podman: true},
  {path: 'etc/resolv.conf', kind: 'file', content: '', podman: true},
  {path: 'etc/hostname', kind: 'file', content: '', podman: true},
  {path: 'etc/passwd', kind: 'file', content: 'root:x:0:0:root:/root:/bin/sh\n'},
  {path: 'etc/group', kind: 'file', content: 'root:x:0:\n'},
  // apptainer's default configuration binds the host's; an empty file reads as UTC, as no file does.
  {path: 'etc/localtime', kind: 'file', content: ''},
  {path: 'etc/mtab', kind: 'symlink', target: '../proc/self/mounts', podman: true},
  {path: 'run/.containerenv', kind: 'file', content: '', podman: true},
]

/** Like the kernel's MAXSYMLINKS. */
const MAX_HOPS = 40

/**
 * What is at `rel` inside `root`, following symlinks the way runc finds a mount target:
 * inside the root (an absolute target starts at the root, `..` stops there).
 */
async function kindInRoot(root: string, rel: string): Promise<'dir' | 'file' | 'none'> {
  const parts = (path: string) => path.split('/').filter((p) => p !== '' && p !== '.')
  let todo = parts(rel)
  let done: string[] = []
  let hops = 0
  while (todo.length > 0) {
    const part = todo.shift()!
    if (part === '..') {
      done.pop()
      continue
    }
    const path = join(root, ...done, part)
    const info = await lstat(path).catch(() => undefined)
    if (info === undefined) return 'none'
    if (info.isSymbolicLink()) {
      if (++hops > MAX_HOPS) return 'none'
      const target = await readlink(path)
      if (target.startsWith('/')) done = []
      todo = [...parts(target), ...todo]
      continue
    }
    if (todo.length === 0) return info.isDirectory() ? 'dir' : 'file'
    if (!info.isDirectory()) return 'none'
    done.push(part)
  }
  return 'dir'
}

/**
 * What of {@link MOUNT_POINTS} a root lacks for podman to run it read-only (relative
 * paths, in the list's order): a missing path, a directory where a file must be or the
 * reverse. A few `lstat`s (more only through symlinks), never a scan.
 */
export async function missingForReadOnlyPodman(root: string): Promise<string[]> {
  const needed = MOUNT_POINTS.filter((item) => item.podman)
  const found = await Promise.all(needed.map(async (item) => {
    // podman only creates /etc/mtab: whatever is there (a dangling link too) makes it give up.
    if (item.kind === 'symlink') return lstat(join(root, item.path)).then(() => true, () => false)
    const kind = await kindInRoot(root, item.path)
    return item.kind === 'dir' ? kind === 'dir' : kind === 'file'
  }))
  return needed.filter((_, i) => !found[i]).map((item) => item.path)
}

/** Whether this process may write to `dir` (false on a read-only mount such as a CVMFS client's). */
export async function writable(dir: string): Promise<boolean> {
  return access(dir, constants.W_OK).then(() => true, () => false)
}

async function exists(path: string): Promise<'none' | 'dir' | 'other'> {
  try {
    return (await lstat(path)).isDirectory() ? 'dir' : 'other'
  } catch {
    return 'none'
  }
}

/**
 * Add `items` to a flat root where the image has nothing at their path, in order, never
 * below a symlink or a file the image put there; returns the paths added (relative).
 */
export async function addItems(root: string, items: readonly RootItem[]): Promise<string[]> {
  const added: string[] = []
  for (const item of items) {
    const parts = item.path.split('/')
    // The parent must be a real directory (not a symlink the image put there).
    let parentOk = true
    for (let i = 1; i < parts.length; i++) {
      if ((await exists(join(root, ...parts.slice(0, i)))) !== 'dir') parentOk = false
    }
    const path = join(root, item.path)
    if (!parentOk || (await exists(path)) !== 'none') continue
    if (item.kind === 'dir') {
      await mkdir(path)
      await chmod(path, item.mode)
    } else if (item.kind === 'file') {
      await writeFile(path, item.content, {mode: item.mode ?? 0o644, flag: 'wx'})
      if (item.mode !== undefined) await chmod(path, item.mode)
    } else {
      await symlink(item.target, path)
    }
    added.push(item.path)
  }
  return added
}

/** Add the missing mount points to a flat root; returns the paths added (relative). */
export async function addMountPoints(root: string): Promise<string[]> {
  return addItems(root, MOUNT_POINTS)
}

/**
 * What a flat root needs beyond the image's own files to run read-only: the mount
 * points apptainer and podman bind over (DUCC adds `dev proc sys tmp var/tmp home
 * root etc`), and the files podman's `--rootfs` insists on finding (verified with
 * podman 4.3 on a read-only tree: /etc/mtab, /etc/hosts, /etc/resolv.conf,
 * /etc/hostname, /etc/passwd, /etc/group, /run/.containerenv). Each is created
 * only where the image has nothing at that path, and never through a symlink:
 * the image's own files always win.
 */
import {chmod, lstat, mkdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

type Item = {path: string; kind: 'dir'; mode: number} | {path: string; kind: 'file'; content: string} | {path: string; kind: 'symlink'; target: string}

export const MOUNT_POINTS: readonly Item[] = [
  {path: 'dev', kind: 'dir', mode: 0o755},
  {path: 'proc', kind: 'dir', mode: 0o555},
  {path: 'sys', kind: 'dir', mode: 0o555},
  {path: 'tmp', kind: 'dir', mode: 0o1777},
  {path: 'var', kind: 'dir', mode: 0o755},
  {path: 'var/tmp', kind: 'dir', mode: 0o1777},
  {path: 'home', kind: 'dir', mode: 0o755},
  {path: 'root', kind: 'dir', mode: 0o700},
  {path: 'run', kind: 'dir', mode: 0o755},
  {path: 'etc', kind: 'dir', mode: 0o755},
  {path: 'etc/hosts', kind: 'file', content: ''},
  {path: 'etc/resolv.conf', kind: 'file', content: ''},
  {path: 'etc/hostname', kind: 'file', content: ''},
  {path: 'etc/passwd', kind: 'file', content: 'root:x:0:0:root:/root:/bin/sh\n'},
  {path: 'etc/group', kind: 'file', content: 'root:x:0:\n'},
  {path: 'etc/mtab', kind: 'symlink', target: '../proc/self/mounts'},
  {path: 'run/.containerenv', kind: 'file', content: ''},
]

async function exists(path: string): Promise<'none' | 'dir' | 'other'> {
  try {
    return (await lstat(path)).isDirectory() ? 'dir' : 'other'
  } catch {
    return 'none'
  }
}

/** Add the missing mount points to a flat root; returns the paths added (relative). */
export async function addMountPoints(root: string): Promise<string[]> {
  const added: string[] = []
  for (const item of MOUNT_POINTS) {
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
      await writeFile(path, item.content, {mode: 0o644, flag: 'wx'})
    } else {
      await symlink(item.target, path)
    }
    added.push(item.path)
  }
  return added
}

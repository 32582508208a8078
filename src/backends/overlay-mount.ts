/**
 * A private overlayfs mount: the repository read-only below, a scratch directory above.
 * The ingest backend makes its changes in the merged view, so that every writer (the
 * layer merge, the layout writer, the podman store) sees the whole repository, and then
 * reads the upper directory, which holds exactly the change: new and replaced entries,
 * whiteouts (character devices 0:0) for deletions, and opaque directories.
 *
 * Options: no index, no metacopy (an upper file must hold its data, or the change could not
 * be packed), no redirect_dir (renaming a lower directory fails with EXDEV, as on a CVMFS
 * union mount, instead of leaving a redirect only overlayfs understands).
 */
import {readFileSync} from 'node:fs'

import {run, runSync} from '../exec.js'
import type {Logger} from '../log.js'

export const OVERLAY_OPTIONS = 'index=off,metacopy=off,redirect_dir=off'

export interface OverlayDirs {
  lower: string
  upper: string
  work: string
  merged: string
}

export async function mountOverlay(dirs: OverlayDirs, logger: Logger): Promise<void> {
  for (const dir of Object.values(dirs)) {
    if (/[,:\\]/.test(dir)) throw new TypeError(`overlay directory ${dir}: ',', ':' and '\\' cannot be passed to overlayfs`)
  }
  const options = `lowerdir=${dirs.lower},upperdir=${dirs.upper},workdir=${dirs.work},${OVERLAY_OPTIONS}`
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, dirs.merged], {
    logger,
    missingHint: 'mount comes with util-linux; the ingest backend needs root to mount overlayfs.',
  })
}

/** Unmount; a busy mount is detached (`umount -l`) and freed when its last user goes. */
export async function unmount(path: string, logger: Logger): Promise<void> {
  await run('umount', [path], {logger}).catch(() => run('umount', ['-l', path], {logger}))
}

export function unmountSync(path: string, logger: Logger): void {
  if (runSync('umount', [path], {logger}).exitCode !== 0) runSync('umount', ['-l', path], {logger})
}

/** Whether something is mounted at `path` (read from /proc/self/mountinfo). */
export function isMountPoint(path: string): boolean {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => unescape(line.split(' ')[4] ?? '') === path)
}

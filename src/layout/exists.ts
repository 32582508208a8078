/** Whether anything (a file, a directory, a dangling symlink) is at `path`; symlinks are not followed. */
import {lstat} from 'node:fs/promises'

export async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

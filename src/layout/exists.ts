/** Whether anything (a file, a directory, a dangling symlink) is at `path`; symlinks are not followed. */
import {lstat, readdir} from '../fs-calls.js'

export async function pathExists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

/** The real directories (not links to them) of a directory, sorted; none when it is missing. */
export async function realArchDirs(dir: string): Promise<string[]> {
  let entries
  try {
    entries = await readdir(dir, {withFileTypes: true})
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return []
    throw error
  }
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort()
}

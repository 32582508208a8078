/** Bytes of file content in a tree, each hardlinked file counted once. */
import {lstatSync, readdirSync, type Stats} from 'node:fs'
import {join} from 'node:path'

/** Call `visit` with the lstat and path of every regular file below `dir` (symlinks not followed). */
export function forEachFile(dir: string, visit: (stat: Stats, path: string) => void): void {
  for (const child of readdirSync(dir, {withFileTypes: true})) {
    const full = join(dir, child.name)
    if (child.isDirectory()) forEachFile(full, visit)
    else if (child.isFile()) visit(lstatSync(full), full)
  }
}

export function treeBytes(dir: string): number {
  const seen = new Set<string>()
  let total = 0
  forEachFile(dir, (st) => {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`
      if (seen.has(key)) return
      seen.add(key)
    }
    total += st.size
  })
  return total
}

/** Bytes of file content in a tree, each hardlinked file counted once. */
import {lstatSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

export function treeBytes(dir: string): number {
  const seen = new Set<string>()
  let total = 0
  const walk = (path: string): void => {
    for (const child of readdirSync(path, {withFileTypes: true})) {
      const full = join(path, child.name)
      if (child.isDirectory()) walk(full)
      else if (child.isFile()) {
        const st = lstatSync(full)
        const key = `${st.dev}:${st.ino}`
        if (st.nlink > 1) {
          if (seen.has(key)) continue
          seen.add(key)
        }
        total += st.size
      }
    }
  }
  walk(dir)
  return total
}

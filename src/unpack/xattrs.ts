/**
 * Extended attributes. Node.js has no setxattr, so they are collected while the
 * layers are merged and applied at the end in one `setfattr --restore` run (one
 * subprocess per image, not per file). Applying them last is also what keeps
 * `security.capability`: a chown clears it, and chowns happen during the merge.
 */
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {run} from '../exec.js'
import type {Logger} from '../log.js'

/** Path (absolute) → attribute name → raw value. */
export type XattrTable = Map<string, Map<string, Buffer>>

/** getfattr's quoting of a path: bytes outside printable ASCII, and `\`, as `\ooo`. */
export function quotePath(path: string): string {
  let out = ''
  for (const byte of Buffer.from(path, 'utf8')) {
    if (byte <= 0x20 || byte >= 0x7f || byte === 0x5c || byte === 0x3d) out += `\\${byte.toString(8).padStart(3, '0')}`
    else out += String.fromCharCode(byte)
  }
  return out
}

/** A dump in the format `setfattr --restore` reads. */
export function restoreDump(table: XattrTable): string {
  const blocks: string[] = []
  for (const [path, attrs] of table) {
    const lines = [`# file: ${quotePath(path)}`]
    for (const [name, value] of attrs) lines.push(`${quotePath(name)}=0x${value.toString('hex')}`)
    blocks.push(`${lines.join('\n')}\n`)
  }
  return blocks.join('\n')
}

/** Whether this process may set an attribute of that namespace. */
export function maySet(name: string, isRoot: boolean): boolean {
  return isRoot || name.startsWith('user.')
}

/** Apply the collected attributes with one setfattr run. */
export async function applyXattrs(table: XattrTable, workDir: string, logger: Logger): Promise<void> {
  if (table.size === 0) return
  const dumpFile = join(workDir, 'xattrs.dump')
  await writeFile(dumpFile, restoreDump(table))
  logger.debug(`setting extended attributes on ${table.size} file(s)`)
  // -h: never follow a symlink (an attribute on a link is the link's).
  await run('setfattr', ['-h', `--restore=${dumpFile}`], {
    logger,
    missingHint: 'setfattr comes with the "attr" package (Debian: apt install attr; EL: dnf install attr).',
  })
}

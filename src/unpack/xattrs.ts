/**
 * Extended attributes. Node.js has no setxattr, so they are collected while the
 * layers are merged and applied at the end in one `setfattr --restore` run (one
 * subprocess per image, not per file). Applying them last is also what keeps
 * `security.capability`: a chown clears it, and chowns happen during the merge.
 */
import {join} from 'node:path'

import {runBrief} from '../exec.js'
import {writeFile} from '../fs-promises.js'
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
  await runBrief('setfattr', ['-h', `--restore=${dumpFile}`], {
    logger,
    missingHint: 'setfattr comes with the "attr" package (Debian: apt install attr; EL: dnf install attr).',
  })
}

/** Inverse of {@link quotePath}: getfattr's `\ooo` escapes back to the UTF-8 text. */
export function unquotePath(quoted: string): string {
  const latin1 = quoted.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
  return Buffer.from(latin1, 'latin1').toString('utf8')
}

/**
 * Every extended attribute below `dir` (symlinks not followed), in one getfattr run:
 * absolute path → attribute name → raw value. Paths without attributes are absent.
 */
export async function readXattrTree(dir: string, logger: Logger): Promise<XattrTable> {
  return getfattr(['--recursive', dir], logger)
}

/** Paths per getfattr run of {@link readXattrsOf}: far below any argument-length limit. */
const PATHS_PER_RUN = 500

/** The extended attributes of `paths` themselves (not below them), as {@link readXattrTree} gives them. */
export async function readXattrsOf(paths: readonly string[], logger: Logger): Promise<XattrTable> {
  const table: XattrTable = new Map()
  for (let i = 0; i < paths.length; i += PATHS_PER_RUN) {
    for (const [path, attrs] of await getfattr(['--', ...paths.slice(i, i + PATHS_PER_RUN)], logger)) table.set(path, attrs)
  }
  return table
}

async function getfattr(args: string[], logger: Logger): Promise<XattrTable> {
  const result = await runBrief('getfattr', ['--physical', '--no-dereference', '--dump', '--match=-', '--encoding=hex', '--absolute-names', ...args], {
    logger,
    binaryStdout: true,
    env: {LC_ALL: 'C'},
    missingHint: 'getfattr comes with the "attr" package (Debian: apt install attr; EL: dnf install attr).',
  })
  const table: XattrTable = new Map()
  let attrs: Map<string, Buffer> | undefined
  // latin1 keeps one character per byte: names are unquoted byte-exactly below.
  for (const line of result.stdoutBytes!.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      attrs = new Map()
      table.set(unquotePath(line.slice('# file: '.length)), attrs)
    } else if (attrs && line !== '') {
      const eq = line.indexOf('=')
      // An empty value is printed as a bare name.
      const value = eq < 0 ? '' : line.slice(eq + 1).replace(/^0x/, '')
      attrs.set(unquotePath(eq < 0 ? line : line.slice(0, eq)), Buffer.from(value, 'hex'))
    }
  }
  return table
}

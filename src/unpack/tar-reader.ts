/**
 * tar-stream, with one correction: PAX records are decoded as UTF-8 by tar-stream,
 * which corrupts binary extended-attribute values (a `security.capability` holds
 * raw bytes ≥ 0x80). We replace its PAX decoder so that `SCHILY.xattr.*` values keep
 * their bytes (as a latin1 string, one char per byte) while every other record
 * stays UTF-8. tar-stream is pinned to 3.x in package.json; the file-capability
 * test fails loudly if an upgrade changes the hook point.
 */
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'

import tar, {type Extract, type Header} from 'tar-stream'

export const XATTR_PREFIX = 'SCHILY.xattr.'

const require = createRequire(import.meta.url)
const headersModule = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as {
  decodePax: (buf: Buffer) => Record<string, string>
}

function decodePax(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {}
  let rest = buf
  while (rest.length > 0) {
    const space = rest.indexOf(0x20)
    if (space <= 0) break
    const length = Number.parseInt(rest.subarray(0, space).toString('ascii'), 10)
    if (!Number.isSafeInteger(length) || length <= space || length > rest.length) break
    const record = rest.subarray(space + 1, length - 1) // drop the trailing newline
    const eq = record.indexOf(0x3d)
    if (eq === -1) break
    const key = record.subarray(0, eq).toString('utf8')
    const value = record.subarray(eq + 1)
    result[key] = key.startsWith(XATTR_PREFIX) ? value.toString('latin1') : value.toString('utf8')
    rest = rest.subarray(length)
  }
  return result
}

headersModule.decodePax = decodePax

/** A tar entry header as tar-stream gives it, with the PAX records. */
export type EntryHeader = Omit<Header, 'pax'> & {pax?: Record<string, string> | null}

/** Extended attributes of an entry, values as raw bytes. */
export function entryXattrs(header: EntryHeader): Map<string, Buffer> | undefined {
  if (!header.pax) return undefined
  let xattrs: Map<string, Buffer> | undefined
  for (const [key, value] of Object.entries(header.pax)) {
    if (!key.startsWith(XATTR_PREFIX)) continue
    xattrs ??= new Map()
    xattrs.set(key.slice(XATTR_PREFIX.length), Buffer.from(value, 'latin1'))
  }
  return xattrs
}

/** A tar parser (a writable stream and an async iterator of entries). */
export function createTarExtract(): Extract {
  return tar.extract()
}

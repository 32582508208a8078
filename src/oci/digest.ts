/**
 * Content digests. The OCI spec allows other algorithms (sha512, blake3 …) but every
 * path in a repository (`.flat/<hh>/<hex>`, `.layers/<hh>/<hex>`) is named after a
 * sha256, as DUCC does, so anything else is refused where a digest enters cvmfs-oci.
 */
import {crypto} from '../builtins.js'

import {VerificationError} from '../errors.js'

export interface ParsedDigest {
  algorithm: 'sha256'
  /** 64 lowercase hex digits. */
  hex: string
}

const SHA256 = /^sha256:([a-f0-9]{64})$/
// The general OCI grammar, to tell "unsupported algorithm" from "not a digest at all".
const ANY_DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):[a-zA-Z0-9=_-]+$/

/**
 * Parse `sha256:<64 lowercase hex>`.
 *
 * @param what names where the digest came from (e.g. `layer 2 of manifest …`), for the message
 * @throws VerificationError `E_BAD_DIGEST` for anything else, including other
 *   algorithms and uppercase hex (a digest is compared as a string, so `ABC` ≠ `abc`)
 */
export function parseDigest(s: string, what?: string): ParsedDigest {
  const m = typeof s === 'string' ? SHA256.exec(s) : null
  if (m) return {algorithm: 'sha256', hex: m[1]!}
  const where = what ? ` in ${what}` : ''
  const shown = typeof s === 'string' ? JSON.stringify(s.length > 90 ? `${s.slice(0, 87)}…` : s) : String(s)
  const other = typeof s === 'string' ? ANY_DIGEST.exec(s) : null
  const reason =
    other && other[1] !== 'sha256'
      ? `unsupported digest algorithm "${other[1]}"${where}: ${shown}; cvmfs-oci accepts only sha256`
      : `bad digest${where}: ${shown} (expected "sha256:" and 64 lowercase hex digits)`
  throw new VerificationError(reason, {code: 'E_BAD_DIGEST'})
}

/** `sha256:<hex>` of a buffer. */
export function sha256Digest(buf: Buffer): string {
  return `sha256:${crypto().createHash('sha256').update(buf).digest('hex')}`
}

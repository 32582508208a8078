/**
 * Pure rules for tar entry names: normalisation, the hostile-name guard and OCI
 * whiteout classification. Every entry is hostile until these say otherwise.
 */
import {VerificationError} from '../errors.js'

/** OCI whiteout prefix: `.wh.<name>` deletes `<name>` from the lower layers. */
export const WHITEOUT_PREFIX = '.wh.'
/** OCI opaque marker: a directory holding it drops all of its lower children. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq'

/** A hostile or malformed tar entry: the whole image is rejected. */
export function hostileEntry(code: string, entry: string, layer: string, why: string): VerificationError {
  return new VerificationError(`layer ${layer}: entry ${JSON.stringify(entry)} ${why}; the image was rejected and nothing was published`, {
    code,
    hint: 'The image holds an archive entry that is unsafe (it would reach outside the image root) or malformed. Rebuild the image from a trusted source.',
  })
}

/**
 * Normalise an entry name to path components relative to the image root.
 * `./a//b/` → ['a','b']; '' and './' → [] (the root itself).
 * Absolute names, `..` components and NUL bytes are refused: the OCI spec's
 * layers never need them, and node-tar/umoci treat them as attacks.
 */
export function entryComponents(name: string, layer: string, what = 'name'): string[] {
  if (name.includes('\0')) throw hostileEntry('E_HOSTILE_NUL', name, layer, `has a NUL byte in its ${what}`)
  if (name.startsWith('/')) {
    throw hostileEntry('E_HOSTILE_ABSOLUTE', name, layer, `has an absolute ${what}`)
  }
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw hostileEntry('E_HOSTILE_TRAVERSAL', name, layer, `has a ".." component in its ${what}`)
    parts.push(part)
  }
  return parts
}

export type WhiteoutKind = {kind: 'none'} | {kind: 'opaque'} | {kind: 'whiteout'; target: string} | {kind: 'invalid'}

/** Classify the last component of an entry name. */
export function classifyWhiteout(base: string): WhiteoutKind {
  if (base === WHITEOUT_OPAQUE) return {kind: 'opaque'}
  if (base.startsWith(WHITEOUT_PREFIX)) {
    const target = base.slice(WHITEOUT_PREFIX.length)
    // `.wh.`, `.wh..` and `.wh...` would delete the directory itself or its parent.
    if (target === '' || target === '.' || target === '..') return {kind: 'invalid'}
    return {kind: 'whiteout', target}
  }
  return {kind: 'none'}
}

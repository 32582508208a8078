/**
 * Wish lists: DUCC's recipe format (version 1), read with `yaml` and validated against
 * schemas/wishlist.schema.json (compiled ahead of time). Every problem names its line, so
 * an admin editing a list of hundreds of images is sent to the right place:
 *
 *   wishlist.yaml:7:5: /input/3: invalid image reference "Ubuntu:22.04": …
 *
 * An input is `[https://|http://]REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`; `http://`
 * means a registry without TLS (as DUCC reads it); `*` and `?` in TAG match the registry's
 * tags. `user`, `output_format` and `ignoreErrors` (DUCC's thin images) are accepted and
 * ignored. `platform` (cvmfs-oci's own key, which DUCC ignores) asks for the platforms of
 * multi-platform images as `--platform` does (`all`, or a list).
 */
import {readFileSync} from 'node:fs'

import {LineCounter, parseDocument, type Document} from 'yaml'

import {UsageError} from '../errors.js'
import compiledValidator from '../generated/wishlist.validator.js'
import {formatSchemaErrors, type SchemaValidator} from '../oci/schema-errors.js'
import {parseReference, type ImageReference} from '../reference/reference.js'

const validateWishlist = compiledValidator as SchemaValidator

/** One `input` entry. */
export interface Wish {
  /** As written. */
  input: string
  /** 1-based line of the entry in the file. */
  line: number
  reference: ImageReference
  /** Registry without TLS (`http://`). */
  insecure: boolean
  /** The tag pattern when the tag holds `*` or `?`. */
  tagPattern?: RegExp
}

export interface Wishlist {
  path: string
  repository: string
  wishes: Wish[]
  /** `platform:` (cvmfs-oci's key): what `--platform` would say, e.g. `all`. */
  platform?: string
}

/**
 * Read and check a wish list.
 *
 * @throws UsageError `E_BAD_WISHLIST` listing every problem as `FILE:LINE:COL: …`;
 *   UserError `E_WISHLIST_UNREADABLE` when the file cannot be read.
 */
export async function readWishlist(path: string): Promise<Wishlist> {
  let text: string
  try {
    // Read at once: nothing else runs meanwhile, and sync's first line waits for it (an
    // asynchronous read is several round trips through Node.js's thread pool, ~1 ms; through
    // node:fs/promises, loading that module costs ~1.7 ms more: measured).
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read the wish list ${path}: ${(error as Error).message}`, {code: 'E_WISHLIST_UNREADABLE', cause: error})
  }
  return parseWishlist(text, path)
}

/** {@link readWishlist} on text already read (`path` names it in messages). */
export function parseWishlist(text: string, path: string): Wishlist {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, prettyErrors: false})
  const at = (offset: number) => {
    const {line, col} = lineCounter.linePos(offset)
    return `${path}:${Math.max(line, 1)}:${Math.max(col, 1)}`
  }
  const problems = doc.errors.map((error) => `${at(error.pos[0])}: ${error.message.split('\n')[0]}`)
  if (problems.length === 0) {
    const data = doc.toJS() as unknown
    if (!validateWishlist(data)) {
      for (const message of formatSchemaErrors(validateWishlist.errors, data, 50)) {
        problems.push(`${at(offsetOf(doc, message.slice(0, message.indexOf(': '))))}: ${message}`)
      }
    }
  }
  const wishes: Wish[] = []
  if (problems.length === 0) {
    const json = doc.toJS() as {cvmfs_repo: string; input: string[]; platform?: string}
    json.input.forEach((input, index) => {
      const offset = offsetOf(doc, `/input/${index}`)
      try {
        wishes.push({...parseWish(input), line: lineCounter.linePos(offset).line})
      } catch (error) {
        problems.push(`${at(offset)}: /input/${index}: ${(error as Error).message}`)
      }
    })
    if (problems.length === 0) return {path, repository: json.cvmfs_repo, wishes, ...(json.platform === undefined ? {} : {platform: json.platform.trim()})}
  }
  throw new UsageError(`the wish list ${path} is not valid:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
    code: 'E_BAD_WISHLIST',
    hint: 'A wish list holds version: 1, cvmfs_repo: NAME and input: a list of images (docs: README, "Wish lists").',
  })
}

/** Where the node at a JSON pointer starts; the nearest existing parent when it is missing. */
function offsetOf(doc: Document, pointer: string): number {
  const path = pointer === '/' || pointer === '' ? [] : pointer.slice(1).split('/').map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')))
  for (let length = path.length; length > 0; length--) {
    const node = doc.getIn(path.slice(0, length), true) as {range?: [number, number, number]} | undefined
    if (node?.range) return node.range[0]
  }
  return (doc.contents as {range?: [number, number, number]} | null)?.range?.[0] ?? 0
}

/** One input entry: scheme, reference, tag pattern. */
export function parseWish(input: string): Omit<Wish, 'line'> {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(input)?.[1]?.toLowerCase()
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    throw new Error(`unsupported scheme ${scheme}:// in ${JSON.stringify(input)} (use https://, http:// or none)`)
  }
  const rest = scheme === undefined ? input : input.slice(scheme.length + 3)
  // The tag: after the last ':' of the last path component, before any '@'.
  const name = rest.split('@')[0]!
  const colon = name.lastIndexOf(':')
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined
  if (tag === undefined || !/[*?]/.test(tag)) return {input, reference: parseReference(rest), insecure: scheme === 'http'}
  // A pattern is checked as a tag (with its wildcards as letters), then matched against the registry's tags.
  const reference = parseReference(`${name.slice(0, colon)}:${tag.replace(/\*/g, 'x').replace(/\?/g, 'y')}${rest.slice(name.length)}`)
  if (reference.digest) throw new Error(`${JSON.stringify(input)}: a tag pattern cannot go with a digest`)
  reference.tag = tag
  const pattern = tag.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return {input, reference, insecure: scheme === 'http', tagPattern: new RegExp(`^${pattern}$`)}
}

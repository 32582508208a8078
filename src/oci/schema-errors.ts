/**
 * Turning ajv's error objects into lines a person can act on. Shared by every
 * validator built from `schemas/` (image documents, the configuration file, wish
 * lists), so all of them report problems the same way: `<JSON pointer>: <message>`.
 *
 * Only the ajv *type* is imported: the compiled validators run without ajv's
 * compiler, and this module must not pull it in at load time either.
 */
import type {ErrorObject} from 'ajv'

/** A validator compiled ahead of time by scripts/compile-schemas.mjs. */
export type SchemaValidator = ((data: unknown) => boolean) & {errors?: ErrorObject[] | null}

// Patterns of schemas/descriptor.schema.json that read better in words than as regexes.
const PATTERN_MEANINGS: Record<string, string> = {
  '^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$': 'must be a digest such as "sha256:<64 hex digits>"',
  '^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$':
    'must be a media type such as "application/vnd.oci.image.layer.v1.tar+gzip"',
}

/** How many problems one message lists before it says "and N more". */
export const DEFAULT_ERROR_LIMIT = 10

/**
 * Format ajv errors as `<JSON pointer>: <message>` lines, at most `limit` of them
 * (plus a final `… and N more`).
 *
 * With `allErrors`, ajv reports every branch of an `anyOf` and then a summary line;
 * when all branches only disagree on the type (our "array or null" fields) they are
 * folded into one `must be array or null`. A missing or unknown property is reported
 * at its own pointer, which is where the reader has to look. When `data` (the
 * validated document) is given, the offending value is quoted, shortened.
 */
export function formatSchemaErrors(
  errors: readonly ErrorObject[] | null | undefined,
  data?: unknown,
  limit: number = DEFAULT_ERROR_LIMIT,
): string[] {
  if (!errors || errors.length === 0) return []
  // ajv reports an anyOf's branch errors before the anyOf itself: group them first.
  const branchesOf = new Map<ErrorObject, ErrorObject[]>()
  const inBranch = new Set<ErrorObject>()
  for (const error of errors) {
    if (error.keyword !== 'anyOf' && error.keyword !== 'oneOf') continue
    const branches = errors.filter((e) => e !== error && e.schemaPath.startsWith(`${error.schemaPath}/`))
    branchesOf.set(error, branches)
    for (const b of branches) inBranch.add(b)
  }
  const lines: string[] = []
  for (const error of errors) {
    if (inBranch.has(error)) continue
    const branches = branchesOf.get(error)
    if (!branches || branches.length === 0) {
      lines.push(formatOne(error, data))
    } else if (branches.every((b) => b.keyword === 'type' && b.instancePath === error.instancePath)) {
      const types = branches.map((b) => String(b.params['type']))
      lines.push(line(error.instancePath, `must be ${types.join(' or ')}`, data, true))
    } else {
      // A branch failed deeper inside the value, so the value had that branch's type
      // and "must be null" from the other branch is noise. The deeper reasons are
      // more useful than ajv's "must match a schema in anyOf".
      const deeper = branches.filter((b) => !(b.keyword === 'type' && b.instancePath === error.instancePath))
      for (const b of deeper) lines.push(formatOne(b, data))
    }
  }
  const unique = [...new Set(lines)]
  if (unique.length <= limit) return unique
  return [...unique.slice(0, limit), `… and ${unique.length - limit} more`]
}

function formatOne(error: ErrorObject, data: unknown): string {
  const p = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'required':
      return line(child(error.instancePath, String(p['missingProperty'])), 'is required but missing', data, false)
    case 'additionalProperties':
      return line(child(error.instancePath, String(p['additionalProperty'])), 'is not allowed here (unknown property)', data, false)
    case 'const':
      return line(error.instancePath, `must be ${JSON.stringify(p['allowedValue'])}`, data, true)
    case 'enum': {
      const allowed = (p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')
      return line(error.instancePath, `must be one of ${allowed}`, data, true)
    }
    case 'pattern': {
      const named = PATTERN_MEANINGS[String(p['pattern'])]
      return line(error.instancePath, named ?? error.message ?? 'must match a pattern', data, true)
    }
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'format':
    case 'minLength':
    case 'maxLength':
      return line(error.instancePath, error.message ?? error.keyword, data, true)
    default:
      return line(error.instancePath, error.message ?? error.keyword, data, false)
  }
}

function line(pointer: string, message: string, data: unknown, showValue: boolean): string {
  // The root's JSON pointer is the empty string; '/' reads better in a message.
  const where = pointer === '' ? '/' : pointer
  if (!showValue || data === undefined) return `${where}: ${message}`
  const value = resolvePointer(data, pointer)
  return value.found ? `${where}: ${message} (got ${preview(value.value)})` : `${where}: ${message}`
}

/** Append one property name to a JSON pointer, escaped per RFC 6901. */
function child(pointer: string, name: string): string {
  return `${pointer}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`
}

function resolvePointer(data: unknown, pointer: string): {found: boolean; value?: unknown} {
  if (pointer === '') return {found: true, value: data}
  let current: unknown = data
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) return {found: false}
    current = (current as Record<string, unknown>)[key]
  }
  return {found: true, value: current}
}

/** A short rendering of a value: documents under check may hold huge or hostile strings. */
function preview(value: unknown): string {
  let text: string
  if (value !== null && typeof value === 'object') text = Array.isArray(value) ? 'an array' : 'an object'
  else text = JSON.stringify(value) ?? String(value)
  return text.length > 80 ? `${text.slice(0, 77)}…` : text
}

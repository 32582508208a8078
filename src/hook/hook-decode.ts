/**
 * A hook file as podman's Go decoder (encoding/json) reads it, so that the checks of
 * hook-file.ts judge what podman sees rather than the text. Seen with podman 4.3.1
 * (test/e2e/hook-validate-podman.test.ts):
 * - a key matches its field ignoring case (`"When"` is `when`, `"PATH"` is `path`);
 * - a field given twice (in two spellings) is decoded twice, in order: an object merges
 *   into what is there, anything else replaces it;
 * - `null` resets a list, a map or an optional value, and leaves a string or an object as
 *   it was; a `null` inside a list of strings or as a map value is `""`.
 * Keys that match no field stay as they are: podman ignores them, the checks name them.
 */

/** How Go holds a field: what `null` does to it, and whether an object merges into it. */
type Field = 'string' | 'list' | 'map' | 'optional' | Struct
interface Struct {
  [name: string]: Field
}

type JsonObject = Record<string, unknown>

const WHEN: Struct = {always: 'optional', annotations: 'map', commands: 'list', hasBindMounts: 'optional'}
const HOOK: Struct = {path: 'string', args: 'list', env: 'list', timeout: 'optional'}
/** The fields of a 1.0.0 hook file (containers/podman pkg/hooks/1.0.0). */
export const HOOK_FILE_FIELDS: Struct = {version: 'string', hook: HOOK, when: WHEN, stages: 'list'}

export const isObject = (value: unknown): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value)

/** Go's case folding for field names (it also folds the long s and the Kelvin sign). */
const fold = (name: string) => name.replace(/\u017f/g, 's').toLowerCase()

const blankNulls = (list: unknown[]) => list.map((item) => item ?? '')

/** Decode `source` into `target` field by field, as Go would into a struct of `fields`. */
function decodeInto(target: JsonObject, source: JsonObject, fields: Struct): JsonObject {
  for (const [key, value] of Object.entries(source)) {
    const name = key in fields ? key : Object.keys(fields).find((field) => fold(field) === fold(key))
    if (name === undefined) {
      target[key] = value
      continue
    }
    const field = fields[name]!
    if (value === null) {
      if (field === 'list' || field === 'map' || field === 'optional') delete target[name]
    } else if (typeof field === 'object' && isObject(value)) {
      const existing = target[name]
      target[name] = decodeInto(isObject(existing) ? existing : {}, value, field)
    } else if (field === 'map' && isObject(value)) {
      const existing = target[name]
      const entries = Object.entries(value).map(([k, v]) => [k, v ?? ''])
      target[name] = {...(isObject(existing) ? existing : {}), ...Object.fromEntries(entries)}
    } else {
      target[name] = field === 'list' && Array.isArray(value) ? blankNulls(value) : value
    }
  }
  return target
}

/** The fields of `source` that a struct of `fields` would get, as podman's decoder fills them. */
export function decodeLikeGo(source: JsonObject, fields: Struct = HOOK_FILE_FIELDS): JsonObject {
  return decodeInto({}, source, fields)
}

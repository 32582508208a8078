/**
 * Check OCI hook files the way podman reads them, and say what podman does about each
 * problem: refuse to start containers ('error'), or start them without that hook, or
 * with it but not quite as written ('warning'). Every verdict here was seen with podman
 * 4.3.1 (test/e2e/hook-validate-podman.test.ts puts each kind beside our hook and runs a
 * container). podman loads a hooks directory in this order, and the order matters:
 * 1. each *.json file is read (one that is gone, a dangling symlink, is ignored) and
 *    decoded (hook-decode.ts); a file it cannot decode stops every container start;
 * 2. `hook.path` is looked up: where it does not exist podman drops the file silently,
 *    and whatever else is wrong after this point does not matter (yet);
 * 3. the regexes must compile and the stages be known, or no container starts;
 * 4. a hook that matches a container runs at its stages; where it cannot run (not
 *    executable, a timeout below 1 s) that container does not start.
 */
import {join} from 'node:path'

import {readdir, readFile, stat} from '../fs-calls.js'
import validateHookSchemaRaw from '../generated/hook.validator.js'
import type {SchemaValidator} from '../oci/schema-errors.js'
import {decodeLikeGo, isObject} from './hook-decode.js'
import {re2Problem} from './re2.js'

const validateHookSchema = validateHookSchemaRaw as SchemaValidator

/** podman's default hooks directory, and the one it reads when configured. */
export const DEFAULT_HOOKS_DIRS = ['/usr/share/containers/oci/hooks.d', '/etc/containers/oci/hooks.d']

/**
 * What podman does while a file with the problem is in its hooks directory: it refuses to
 * start containers (every one, or every one the hook matches), it skips this hook (the
 * containers start without it), or it runs the hook (a detail of the file is not what it
 * seems).
 */
export type PodmanEffect = 'refuses' | 'skips' | 'runs'

/** Every kind of problem validate knows, and what podman does about it alone. */
export const HOOK_PROBLEM_EFFECTS = {
  'not-found': 'skips',
  vanished: 'skips',
  unreadable: 'refuses',
  'not-json': 'refuses',
  'not-object': 'refuses',
  'unknown-version': 'refuses',
  legacy: 'runs',
  'legacy-invalid': 'refuses',
  'wrong-type': 'refuses',
  'missing-property': 'refuses',
  'unknown-property': 'runs',
  'env-entry': 'runs',
  'relative-path': 'skips',
  'missing-program': 'skips',
  'bad-path': 'refuses',
  'bad-regex': 'refuses',
  'unknown-stage': 'refuses',
  'never-matches': 'skips',
  'no-stages': 'skips',
  'not-executable': 'refuses',
  'bad-timeout': 'refuses',
} as const satisfies Record<string, PodmanEffect>

export type HookProblemKind = keyof typeof HOOK_PROBLEM_EFFECTS

/** The refusals of a hook that cannot run: only the containers it matches fail to start (any other refusal stops every start). */
export const FAILS_WHEN_RUN: ReadonlySet<HookProblemKind> = new Set(['not-executable', 'bad-timeout'])

export interface HookProblem {
  kind: HookProblemKind
  /** 'error' where podman refuses to start containers, 'warning' where it starts them. */
  severity: 'error' | 'warning'
  /** What podman does about this problem, given the file's others (a hook it skips fails nothing). */
  podman: PodmanEffect
  message: string
}

export interface HookFileReport {
  file: string
  problems: HookProblem[]
}

/** When podman meets a problem while loading and running a hook file (the steps above). */
type Step = 'decode' | 'path' | 'validate' | 'match' | 'run' | 'none'

interface Found {
  kind: HookProblemKind
  step: Step
  message: string
}

const problem = (kind: HookProblemKind, message: string, podman: PodmanEffect = HOOK_PROBLEM_EFFECTS[kind]): HookProblem => ({
  kind,
  severity: podman === 'refuses' ? 'error' : 'warning',
  podman,
  message,
})

/** What podman does with a file that has these problems: the worst of them. */
export function podmanVerdict(problems: HookProblem[]): PodmanEffect {
  if (problems.some((p) => p.podman === 'refuses')) return 'refuses'
  return problems.some((p) => p.podman === 'skips') ? 'skips' : 'runs'
}

/** A problem podman does not get to while it skips the hook (a missing program, a `when` that never matches). */
function masked(found: Found[]): HookProblem[] {
  const skippedAt = (step: Step) => found.some((f) => f.step === step && HOOK_PROBLEM_EFFECTS[f.kind] === 'skips')
  const dropped = skippedAt('path')
  const neverRuns = dropped || skippedAt('match')
  return found.map((f) => {
    const hidden = HOOK_PROBLEM_EFFECTS[f.kind] === 'refuses' && ((dropped && f.step === 'validate') || (neverRuns && FAILS_WHEN_RUN.has(f.kind)))
    return hidden ? problem(f.kind, `${f.message} (harmless only while podman skips this hook)`, 'skips') : problem(f.kind, f.message)
  })
}

interface SchemaError {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

function describe(error: SchemaError, value: unknown): Found {
  const where = error.instancePath || '(top level)'
  switch (error.keyword) {
    case 'additionalProperties':
      return {kind: 'unknown-property', step: 'none', message: `${where}: unknown property ${JSON.stringify(error.params.additionalProperty)} is ignored by podman`}
    case 'required': {
      const missing = error.params.missingProperty as string
      if (missing === 'when') return {kind: 'never-matches', step: 'match', message: 'no "when": podman never runs the hook (`"when": {"always": true}` runs it for every container)'}
      const property = where === '/hook' ? 'hook.path' : missing === 'hook' ? 'hook (and its path)' : missing
      return {kind: 'missing-property', step: missing === 'stages' ? 'validate' : 'decode', message: `missing required property ${property}`}
    }
    case 'enum':
      return {kind: 'unknown-stage', step: 'validate', message: `${where}: unknown stage ${JSON.stringify(value)} (podman knows ${(error.params.allowedValues as string[]).join(', ')})`}
    case 'minItems':
      return {kind: 'no-stages', step: 'match', message: `${where}: no stage: podman never runs the hook`}
    case 'pattern':
      return where === '/hook/path'
        ? {kind: 'relative-path', step: 'path', message: `hook.path ${JSON.stringify(value)} is relative: podman looks it up from its own working directory and skips the hook where it is not there; give an absolute path`}
        : {kind: 'env-entry', step: 'none', message: `${where}: ${JSON.stringify(value)} is not NAME=VALUE, so it defines no variable (podman still runs the hook)`}
    case 'minimum':
      return {kind: 'bad-timeout', step: 'run', message: `${where}: a timeout of ${String(value)} s kills the hook at once (podman, or runc at the runtime's stages): every container it matches fails to start`}
    default:
      return {kind: 'wrong-type', step: 'decode', message: `${where}: ${error.message}: podman cannot decode the file`}
  }
}

/** The value at a JSON pointer of the schema's errors. */
function at(root: unknown, pointer: string): unknown {
  let value = root
  for (const part of pointer.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  return value
}

/** Why a `when` never matches a container (podman 4.3's When.Match), if it never does. */
function neverMatches(when: Record<string, unknown>): string | undefined {
  if (when.always === false) return '"when": "always" is false: podman never runs the hook'
  if (when.hasBindMounts === false) return '"when": "hasBindMounts" is false, which no container matches: podman never runs the hook'
  const some = (value: unknown) => (Array.isArray(value) ? value.length > 0 : isObject(value) && Object.keys(value).length > 0)
  if (when.always !== true && when.hasBindMounts !== true && !some(when.annotations) && !some(when.commands)) {
    return '"when" holds no condition podman knows (always, annotations, commands, hasBindMounts): podman never runs the hook'
  }
  return undefined
}

/** hook.path looked up as podman does (os.Stat, then the runtime executes it). */
async function programProblems(path: string): Promise<Found[]> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    return info.code === 'ENOENT'
      ? [{kind: 'missing-program', step: 'path', message: `hook.path ${path} does not exist: podman skips this hook without a word`}]
      : [{kind: 'bad-path', step: 'path', message: `hook.path ${path} cannot be looked up (${info.code ?? info.message}): podman refuses to start containers`}]
  }
  if (!info.isFile()) return [{kind: 'not-executable', step: 'run', message: `hook.path ${path} is not a file: the hook fails, and every container it matches fails to start`}]
  if ((info.mode & 0o111) === 0) {
    return [{kind: 'not-executable', step: 'run', message: `hook.path ${path} is not executable (mode ${(info.mode & 0o7777).toString(8)}): the hook fails, and every container it matches fails to start`}]
  }
  return []
}

/** The problems of a 1.0.0 hook file (already decoded as podman decodes it). */
async function currentProblems(hook: Record<string, unknown>): Promise<Found[]> {
  // Go takes an empty hook.path for a missing one.
  if (isObject(hook.hook) && hook.hook.path === '') delete hook.hook.path
  const found: Found[] = []
  if (!validateHookSchema(hook)) {
    for (const error of (validateHookSchema.errors ?? []) as unknown as SchemaError[]) found.push(describe(error, at(hook, error.instancePath)))
  }
  const when = isObject(hook.when) ? hook.when : {}
  const regexes: [string, unknown][] = [
    ...(isObject(when.annotations) ? Object.entries(when.annotations) : []).flatMap(([k, v]): [string, unknown][] => [
      [`annotation key ${JSON.stringify(k)}`, k],
      [`annotation value ${JSON.stringify(v)}`, v],
    ]),
    ...(Array.isArray(when.commands) ? when.commands : []).map((c): [string, unknown] => [`command ${JSON.stringify(c)}`, c]),
  ]
  for (const [what, pattern] of regexes) {
    const re2 = typeof pattern === 'string' ? re2Problem(pattern) : undefined
    if (re2) found.push({kind: 'bad-regex', step: 'validate', message: `/when: invalid regex in ${what}: ${re2}`})
  }
  if (isObject(hook.when)) {
    const never = neverMatches(hook.when)
    if (never) found.push({kind: 'never-matches', step: 'match', message: never})
  }
  const path = isObject(hook.hook) ? hook.hook.path : undefined
  if (typeof path === 'string' && path.startsWith('/')) found.push(...(await programProblems(path)))
  return found
}

/** Check the text of one hook file. */
export async function checkHookContent(text: string): Promise<HookProblem[]> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return [problem('not-json', `not valid JSON: ${(error as Error).message}`)]
  }
  if (!isObject(parsed)) return [problem('not-object', 'not a JSON object')]
  const version = decodeLikeGo(parsed, {version: 'string'}).version ?? ''
  if (version === '' || version === '0.1.0') {
    // podman reads a file without "version" as the legacy 0.1.0 schema, where "hook" is a string.
    if (typeof decodeLikeGo(parsed, {hook: 'string'}).hook === 'string') return [problem('legacy', 'legacy 0.1.0 hook schema: podman still reads it; consider version 1.0.0')]
    return [problem('legacy-invalid', 'missing "version": podman reads the file as a 0.1.0 hook, whose "hook" must be a string, and fails')]
  }
  if (version !== '1.0.0') return [problem('unknown-version', `unrecognized hook version ${JSON.stringify(version)} (podman knows 1.0.0 and 0.1.0)`)]
  return masked(await currentProblems(decodeLikeGo(parsed)))
}

/** Check files and directories (every *.json in a directory, as podman reads them). */
export async function checkHookFiles(paths: string[]): Promise<HookFileReport[]> {
  const reports: HookFileReport[] = []
  for (const path of paths) {
    const info = await stat(path).catch(() => null)
    if (!info) {
      reports.push({file: path, problems: [problem('not-found', 'does not exist')]})
      continue
    }
    const files = info.isDirectory()
      ? (await readdir(path)).filter((name) => name.endsWith('.json')).sort().map((name) => join(path, name))
      : [path]
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => error)
      reports.push({file, problems: typeof text === 'string' ? await checkHookContent(text) : [unreadable(text)]})
    }
  }
  return reports
}

/** A file in a hooks directory that cannot be read: podman ignores one that is gone (a dangling symlink) and fails on any other. */
function unreadable(error: NodeJS.ErrnoException): HookProblem {
  return error.code === 'ENOENT'
    ? problem('vanished', 'a symlink to nothing (or removed while read): podman ignores it')
    : problem('unreadable', `cannot be read: ${error.message}`)
}

/**
 * Check OCI hook files the way podman reads them. One invalid file in a hooks
 * directory makes podman fail every container start on the node, so each problem
 * says whether it breaks container starts ('error') or only this hook ('warning').
 */
import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import validateHookSchemaRaw from '../generated/hook.validator.js'
import type {SchemaValidator} from '../oci/schema-errors.js'
import {re2Problem} from './re2.js'

const validateHookSchema = validateHookSchemaRaw as SchemaValidator

/** podman's default hooks directory, and the one it reads when configured. */
export const DEFAULT_HOOKS_DIRS = ['/usr/share/containers/oci/hooks.d', '/etc/containers/oci/hooks.d']

export interface HookProblem {
  severity: 'error' | 'warning'
  message: string
}

export interface HookFileReport {
  file: string
  problems: HookProblem[]
}

interface SchemaError {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

function describe(error: SchemaError): HookProblem {
  const where = error.instancePath || '(top level)'
  switch (error.keyword) {
    case 'additionalProperties':
      return {severity: 'warning', message: `${where}: unknown property ${JSON.stringify(error.params.additionalProperty)} is ignored by podman`}
    case 'minProperties':
      return {severity: 'warning', message: `${where}: an empty "when" never matches: the hook never runs`}
    case 'required':
      return {severity: 'error', message: `${where}: missing required property ${JSON.stringify(error.params.missingProperty)}`}
    case 'enum':
      return {severity: 'error', message: `${where}: unknown stage (podman knows ${(error.params.allowedValues as string[]).join(', ')})`}
    case 'pattern':
      return where === '/hook/path'
        ? {severity: 'error', message: `${where}: must be an absolute path (podman runs hooks with no PATH and no working directory of yours)`}
        : {severity: 'error', message: `${where}: ${error.message}`}
    default:
      return {severity: 'error', message: `${where}: ${error.message}`}
  }
}

/** Check the text of one hook file. */
export async function checkHookContent(text: string): Promise<HookProblem[]> {
  let hook: Record<string, unknown>
  try {
    hook = JSON.parse(text) as Record<string, unknown>
  } catch (error) {
    return [{severity: 'error', message: `not valid JSON: ${(error as Error).message}`}]
  }
  if (hook === null || typeof hook !== 'object' || Array.isArray(hook)) return [{severity: 'error', message: 'not a JSON object'}]
  const version = hook.version
  if (version === undefined || version === '0.1.0' || version === '') {
    // podman reads a file without "version" as the legacy 0.1.0 schema, where "hook" is a string.
    if (typeof hook.hook === 'string') return [{severity: 'warning', message: 'legacy 0.1.0 hook schema: podman still reads it; consider version 1.0.0'}]
    return [{severity: 'error', message: 'missing "version": podman reads the file as a 0.1.0 hook, whose "hook" must be a string, and fails'}]
  }
  if (version !== '1.0.0') return [{severity: 'error', message: `unrecognized hook version ${JSON.stringify(version)} (podman knows 1.0.0 and 0.1.0)`}]

  const problems: HookProblem[] = []
  if (!validateHookSchema(hook)) {
    for (const error of (validateHookSchema.errors ?? []) as unknown as SchemaError[]) problems.push(describe(error))
  }
  const when = (hook.when ?? {}) as {annotations?: Record<string, unknown>; commands?: unknown[]}
  const regexes: [string, unknown][] = [
    ...Object.entries(when.annotations ?? {}).flatMap(([k, v]): [string, unknown][] => [
      [`annotation key ${JSON.stringify(k)}`, k],
      [`annotation value ${JSON.stringify(v)}`, v],
    ]),
    ...(Array.isArray(when.commands) ? when.commands : []).map((c): [string, unknown] => [`command ${JSON.stringify(c)}`, c]),
  ]
  for (const [what, pattern] of regexes) {
    if (typeof pattern !== 'string') continue
    const problem = re2Problem(pattern)
    if (problem) problems.push({severity: 'error', message: `/when: invalid regex in ${what}: ${problem}`})
  }
  const path = (hook.hook as {path?: unknown} | undefined)?.path
  if (typeof path === 'string' && path.startsWith('/')) {
    const found = await stat(path).then(
      (s) => (s.isFile() ? 'ok' : 'not a file'),
      () => 'missing',
    )
    if (found === 'missing') problems.push({severity: 'warning', message: `hook.path ${path} does not exist: podman silently skips this hook`})
    else if (found !== 'ok') problems.push({severity: 'warning', message: `hook.path ${path} is ${found}`})
  }
  return problems
}

/** Check files and directories (every *.json in a directory, as podman reads them). */
export async function checkHookFiles(paths: string[]): Promise<HookFileReport[]> {
  const reports: HookFileReport[] = []
  for (const path of paths) {
    const info = await stat(path).catch(() => null)
    if (!info) {
      reports.push({file: path, problems: [{severity: 'warning', message: 'does not exist'}]})
      continue
    }
    const files = info.isDirectory()
      ? (await readdir(path)).filter((name) => name.endsWith('.json')).sort().map((name) => join(path, name))
      : [path]
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch((error: Error) => error)
      reports.push({
        file,
        problems: typeof text === 'string' ? await checkHookContent(text) : [{severity: 'error', message: `unreadable: ${text.message}`}],
      })
    }
  }
  return reports
}

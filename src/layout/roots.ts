/**
 * Which repository roots `resolve` searches, in order: `--root` flags, the config file
 * (`roots`, then `<cvmfsMount>/<name>` of each of `repositories`), CVMFS_OCI_ROOTS, then
 * /cvmfs/unpacked.cern.ch. Synchronous on purpose: it reads one
 * small file before every container start, and the schema is compiled ahead of time so
 * ajv's compiler is never loaded here.
 */
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {UserError} from '../errors.js'
import compiledValidator from '../generated/config.validator.js'

/** ajv's error objects, as much of them as we show. */
interface SchemaError {
  instancePath: string
  message?: string
  params?: Record<string, unknown>
}
// The generated module is untyped (@ts-nocheck); ajv sets `.errors` after a false result.
const validateConfig = compiledValidator as ((data: unknown) => boolean) & {errors?: SchemaError[] | null}

export const DEFAULT_CONFIG_PATH = '/etc/cvmfs-oci/config.json'
/** The public repository DUCC fills at CERN: searched last, always. */
export const DEFAULT_ROOT = '/cvmfs/unpacked.cern.ch'

/** Where CVMFS mounts repositories, unless configured otherwise. */
export const DEFAULT_CVMFS_MOUNT = '/cvmfs'

/** Where cvmfs-oci keeps its state on a publisher (locks, markers, gc marks), unless configured otherwise. */
export const DEFAULT_STATE_DIR = '/var/lib/cvmfs-oci'

/** A CVMFS repository this machine publishes into (schemas/config.schema.json). */
export interface RepositoryConfig {
  name: string
  ingest?: boolean
}

export interface Config {
  roots?: string[]
  repositories?: RepositoryConfig[]
  cvmfsMount?: string
  stateDir?: string
}

/** The directory CVMFS repositories are mounted under: $CVMFS_OCI_CVMFS_MOUNT, `cvmfsMount`, or /cvmfs. */
export function cvmfsMount(config: Config | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.CVMFS_OCI_CVMFS_MOUNT || config?.cvmfsMount || DEFAULT_CVMFS_MOUNT)
}

/**
 * The roots to search, de-duplicated, first occurrence kept. Relative `--root` and
 * CVMFS_OCI_ROOTS entries are taken relative to the working directory.
 *
 * @throws UserError `E_BAD_CONFIG` when the config file is unreadable, not JSON, or not
 *   valid against schemas/config.schema.json.
 */
export function searchRoots(options: {flagRoots?: string[]; env?: NodeJS.ProcessEnv; configPath?: string} = {}): string[] {
  const env = options.env ?? process.env
  const config = readConfig(options.configPath ?? env.CVMFS_OCI_CONFIG ?? DEFAULT_CONFIG_PATH)
  const fromEnv = (env.CVMFS_OCI_ROOTS ?? '').split(':').filter((r) => r !== '')
  const published = (config?.repositories ?? []).map((repository) => join(cvmfsMount(config, env), repository.name))
  const all = [...(options.flagRoots ?? []), ...(config?.roots ?? []), ...published, ...fromEnv, DEFAULT_ROOT]
  // resolve() also drops trailing slashes, so `/a/` and `/a` count once.
  return [...new Set(all.map((root) => resolve(root)))]
}

/**
 * Read and validate the config file; `undefined` when it does not exist.
 *
 * @throws UserError `E_BAD_CONFIG` naming the file and the JSON pointer of each error.
 */
export function readConfig(path: string): Config | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw badConfig(path, `cannot be read (${code ?? String(error)})`, error)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw badConfig(path, `is not valid JSON: ${(error as Error).message}`, error)
  }
  if (!validateConfig(json)) {
    const problems = (validateConfig.errors ?? []).map((e) => {
      const extra = typeof e.params?.additionalProperty === 'string' ? ` "${e.params.additionalProperty}"` : ''
      return `  ${e.instancePath === '' ? '/' : e.instancePath}: ${e.message ?? 'is invalid'}${extra}`
    })
    throw badConfig(path, `is not a valid configuration:\n${problems.join('\n')}`)
  }
  return json as Config
}

function badConfig(path: string, why: string, cause?: unknown): UserError {
  return new UserError(`configuration file ${path} ${why}`, {
    code: 'E_BAD_CONFIG',
    hint: 'Fix or remove the file (or point CVMFS_OCI_CONFIG elsewhere). It holds {"roots": ["/cvmfs/<repository>", …], "repositories": [{"name": "<repository>"}]} (schemas/config.schema.json).',
    cause,
  })
}

/**
 * Which repository a command writes, and through which backend: `--root DIR` (a plain
 * directory), `--repo NAME` (the CVMFS repository mounted at /cvmfs/NAME, through
 * transactions, or through `cvmfs_server ingest` with `--ingest`), or the only
 * repository listed under `repositories` in the configuration file.
 */
import {join, resolve} from 'node:path'

import {BugError, UsageError} from '../errors.js'
import {cvmfsMount, DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR, readConfig, type Config} from '../layout/roots.js'
import type {Logger} from '../log.js'
import type {RepositoryBackend} from './backend.js'
import {WORK_DIR} from '../layout/paths.js'

export interface TargetOptions {
  /** `--root DIR` */
  root?: string
  /** `--repo NAME` */
  repo?: string
  /** `--ingest` (undefined: as configured for the repository) */
  ingest?: boolean
  /** `--config FILE` */
  configPath?: string
  env?: NodeJS.ProcessEnv
}

export type Target =
  | {kind: 'directory'; root: string}
  | {kind: 'cvmfs'; name: string; root: string; mount: string; stateDir: string; ingest: boolean}

/**
 * Decide the target from flags and configuration.
 *
 * @throws UsageError `E_NO_REPOSITORY` when nothing names one, `E_AMBIGUOUS_REPOSITORY` when
 *   the configuration lists several and no flag chooses.
 */
export function chooseTarget(options: TargetOptions): Target {
  const env = options.env ?? process.env
  if (options.root !== undefined && options.repo !== undefined) throw new UsageError('--root and --repo exclude each other: give one')
  if (options.root !== undefined) {
    if (options.ingest) throw new UsageError('--ingest publishes into a CVMFS repository: use it with --repo NAME, not --root')
    return {kind: 'directory', root: resolve(options.root)}
  }
  const configPath = options.configPath ?? env.CVMFS_OCI_CONFIG ?? DEFAULT_CONFIG_PATH
  const config = readConfig(configPath)
  const configured = config?.repositories ?? []
  let name = options.repo
  if (name === undefined) {
    if (configured.length === 0) {
      throw new UsageError('no repository to work on: give --root DIR or --repo NAME', {
        code: 'E_NO_REPOSITORY',
        hint: `Or list the repository this machine publishes in ${configPath}: {"repositories": [{"name": "unpacked.example.org"}]}.`,
      })
    }
    if (configured.length > 1) {
      throw new UsageError(`${configPath} lists ${configured.length} repositories (${configured.map((r) => r.name).join(', ')}): choose one with --repo NAME`, {
        code: 'E_AMBIGUOUS_REPOSITORY',
      })
    }
    name = configured[0]!.name
  }
  const entry = configured.find((r) => r.name === name)
  const mount = cvmfsMount(config, env)
  return {kind: 'cvmfs', name, root: join(mount, name), mount, stateDir: stateDir(config, env), ingest: options.ingest ?? entry?.ingest ?? false}
}

function stateDir(config: Config | undefined, env: NodeJS.ProcessEnv): string {
  return resolve(env.CVMFS_OCI_STATE_DIR || config?.stateDir || DEFAULT_STATE_DIR)
}

export interface OpenOptions {
  logger: Logger
  lockTimeoutMs: number
  /** Scratch space for the ingest backend (default: the system temp dir). */
  tmpDir?: string
}

/** Open (lock, recover) the backend of a target. Heavy modules load only for the one used. */
export async function openBackend(target: Target, options: OpenOptions): Promise<RepositoryBackend> {
  if (target.kind === 'directory') {
    const {DirectoryBackend} = await import('./directory.js')
    return DirectoryBackend.open(target.root, options)
  }
  const cvmfsOptions = {...options, mount: target.mount, stateDir: target.stateDir}
  if (target.ingest) {
    const {CvmfsIngestBackend} = await import('./cvmfs-ingest.js')
    return CvmfsIngestBackend.open(target.name, cvmfsOptions)
  }
  const {CvmfsTransactionBackend} = await import('./cvmfs-transaction.js')
  return CvmfsTransactionBackend.open(target.name, cvmfsOptions)
}

/**
 * A backend that reads and never writes, for `--dry-run`: no lock is taken and nothing
 * is recovered, so a plan can be made while a publisher runs.
 */
export function readOnlyBackend(target: Target): RepositoryBackend {
  return {
    root: target.root,
    description: target.kind === 'directory' ? `directory ${target.root} (dry run)` : `CVMFS repository ${target.name} (dry run)`,
    stateDir: target.kind === 'directory' ? join(target.root, WORK_DIR) : join(target.stateDir, target.name),
    change: async () => {
      throw new BugError('a dry run tried to change the repository')
    },
    close: async () => {},
  }
}

/** How a target is named in messages and --json output. */
export function describeTarget(target: Target): string {
  return target.kind === 'directory' ? target.root : target.name
}

/**
 * `cvmfs-oci podman configure`: list a repository's podmanStore in containers-storage's
 * storage.conf (`[storage.options] additionalimagestores`), so podman on a node runs its
 * images by name. The file is edited with a comment-preserving TOML library: every other
 * line, comment and blank stays as it was, and a store already listed changes nothing.
 */
import {homedir} from 'node:os'
import {isAbsolute, join, normalize, resolve} from 'node:path'

import {parse, patch} from '@decimalturn/toml-patch'

import {UsageError, UserError} from '../errors.js'
import {lstat, readFile, realpath, stat} from '../fs-promises.js'
import {cvmfsMount, DEFAULT_CONFIG_PATH, readConfig} from '../layout/roots.js'
import {writeFileAtomic} from '../layout/write.js'
import type {Logger} from '../log.js'
import {PODMAN_STORE_DIR} from './paths.js'

/** Where podman (as root) reads storage.conf, and the file the distribution ships. */
export const SYSTEM_STORAGE_CONF = '/etc/containers/storage.conf'
export const SHIPPED_STORAGE_CONF = '/usr/share/containers/storage.conf'

export interface ConfigureOptions {
  /** storage.conf to edit (default: the one podman reads, {@link defaultStorageConf}). */
  storageConf?: string
  /** Repository roots (directories); their podmanStore is added. */
  roots?: string[]
  /** CVMFS repository names: /cvmfs/NAME/podmanStore is added (the mount point as configured, see cvmfsMount). */
  repos?: string[]
  /** cvmfs-oci's configuration file (for `cvmfsMount`). */
  configPath?: string
  /** Only produce the snippet; touch no file. */
  print?: boolean
  logger: Logger
  env?: NodeJS.ProcessEnv
}

export interface ConfigureResult {
  /** The stores asked for, as written. */
  stores: string[]
  /** With --print: the TOML to paste. */
  snippet?: string
  /** The file edited (absent with --print). */
  storageConf?: string
  /** Stores that were not yet listed. */
  added: string[]
  /** Whether the file was written (false: it already listed every store). */
  changed: boolean
  /** Whether the file did not exist before. */
  created: boolean
}

/**
 * The storage.conf podman reads: `$CONTAINERS_STORAGE_CONF`, else the system file for root
 * and `$XDG_CONFIG_HOME/containers/storage.conf` (or `~/.config/…`) for other users.
 */
export function defaultStorageConf(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string {
  if (env.CONTAINERS_STORAGE_CONF) return env.CONTAINERS_STORAGE_CONF
  if (uid === 0) return SYSTEM_STORAGE_CONF
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'containers', 'storage.conf')
}

/**
 * The store paths for `--root` and `--repo`, absolute as containers/storage demands.
 *
 * @throws UsageError `E_NO_STORE` without either; `E_BAD_REPO` for a repository name that is not one.
 */
export function storePaths(roots: string[] = [], repos: string[] = [], mount = '/cvmfs'): string[] {
  if (roots.length === 0 && repos.length === 0) {
    throw new UsageError('say which repository: --repo NAME (for /cvmfs/NAME) or --root DIR', {code: 'E_NO_STORE'})
  }
  for (const repo of repos) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(repo)) {
      throw new UsageError(`--repo ${JSON.stringify(repo)} is not a repository name (like unpacked.cern.ch)`, {code: 'E_BAD_REPO'})
    }
  }
  const paths = [...roots.map((root) => join(resolve(root), PODMAN_STORE_DIR)), ...repos.map((repo) => join(mount, repo, PODMAN_STORE_DIR))]
  return [...new Set(paths)]
}

/** What --print shows: the lines to merge into storage.conf. */
export function storeSnippet(stores: string[]): string {
  return `[storage.options]\nadditionalimagestores = [${stores.map((s) => JSON.stringify(s)).join(', ')}]\n`
}

/**
 * Add `stores` to `[storage.options] additionalimagestores` of a storage.conf text, keeping
 * everything else byte for byte. Pure.
 *
 * @returns the new text (=== `text` when every store was already listed), the stores
 *   added, and the graph driver the file names (if any).
 * @throws UserError `E_BAD_STORAGE_CONF` when the text is not TOML or the key is not a list of strings.
 */
export function addImageStores(text: string, stores: string[], file = 'storage.conf'): {text: string; added: string[]; driver?: string} {
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (error) {
    throw new UserError(`${file} is not valid TOML: ${(error as Error).message}`, {code: 'E_BAD_STORAGE_CONF', cause: error})
  }
  const storage = table(doc, 'storage', file)
  const options = table(storage, 'options', file, 'storage.')
  const current = options.additionalimagestores ?? []
  if (!Array.isArray(current) || !current.every((s) => typeof s === 'string')) {
    throw new UserError(`${file}: [storage.options] additionalimagestores must be a list of paths`, {code: 'E_BAD_STORAGE_CONF'})
  }
  const listed = new Set(current.map(samePath))
  const added = stores.filter((store) => !listed.has(samePath(store)))
  const driver = typeof storage.driver === 'string' ? storage.driver : undefined
  if (added.length === 0) return {text, added, driver}
  options.additionalimagestores = [...current, ...added]
  // Tables two levels deep ([storage.options]) as sections, like the shipped file.
  return {text: patch(text, doc, {inlineTableStart: 3}), added, driver}
}

function table(parent: Record<string, unknown>, key: string, file: string, prefix = ''): Record<string, unknown> {
  const value = (parent[key] ??= {})
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UserError(`${file}: ${prefix}${key} must be a table`, {code: 'E_BAD_STORAGE_CONF'})
  }
  return value as Record<string, unknown>
}

/** containers/storage cleans the paths it reads (filepath.Clean). */
function samePath(path: string): string {
  const clean = normalize(path)
  return clean.length > 1 ? clean.replace(/\/+$/, '') : clean
}

/**
 * Edit (or, with `print`, only describe) a storage.conf. A missing file is created: from the
 * distribution's shipped file for the system path (so its defaults stay), otherwise with
 * just the overlay driver. The file is replaced atomically.
 */
export async function configurePodman(options: ConfigureOptions): Promise<ConfigureResult> {
  const {logger} = options
  const env = options.env ?? process.env
  const mount = options.repos?.length ? cvmfsMount(readConfig(options.configPath ?? env.CVMFS_OCI_CONFIG ?? DEFAULT_CONFIG_PATH), env) : undefined
  const stores = storePaths(options.roots, options.repos, mount)
  for (const store of stores) {
    if (!isAbsolute(store)) throw new UsageError(`${store} is not an absolute path`, {code: 'E_NO_STORE'})
    if (!(await stat(store).then((s) => s.isDirectory(), () => false))) {
      logger.warn(
        `${store} does not exist (yet): podman refuses to start while an additional image store is missing. ` +
          'Publish an image into the repository first (publish creates the store), and check that the repository is mounted.',
      )
    }
  }
  if (options.print) return {stores, snippet: storeSnippet(stores), added: stores, changed: false, created: false}

  const requested = options.storageConf ?? defaultStorageConf(env)
  // Edit the file a symlink points to, not the link.
  const file = await realpath(requested).catch(() => resolve(requested))
  const existing = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw new UserError(`cannot read ${file}: ${error.message}`, {code: 'E_BAD_STORAGE_CONF', cause: error})
  })
  const before = existing ?? (await initialText(file))
  const {text, added, driver} = addImageStores(before, stores, file)
  if (driver !== undefined && driver !== 'overlay' && driver !== 'overlay2') {
    logger.warn(`${file} uses the storage driver "${driver}": podman then reads ${driver}-images/ in additional stores, and cvmfs-oci publishes overlay-images/ only`)
  }
  const changed = existing === undefined || text !== existing
  if (changed) {
    const mode = existing === undefined ? 0o644 : (await lstat(file)).mode & 0o7777
    await writeFileAtomic(file, text, mode)
  }
  if (added.length > 0) logger.info(`${file}: added ${added.join(', ')} to [storage.options] additionalimagestores`)
  else logger.info(`${file}: already lists ${stores.join(', ')}; nothing changed`)
  return {stores, storageConf: file, added, changed, created: existing === undefined}
}

async function initialText(file: string): Promise<string> {
  if (file === SYSTEM_STORAGE_CONF) {
    const shipped = await readFile(SHIPPED_STORAGE_CONF, 'utf8').catch(() => undefined)
    if (shipped !== undefined) return shipped
  }
  return '# containers-storage.conf(5); written by cvmfs-oci podman configure\n[storage]\ndriver = "overlay"\n'
}

/**
 * Where podman's own configuration says things are: the hooks directories (containers.conf
 * `[engine] hooks_dir`) and the additional image stores (storage.conf `[storage.options]
 * additionalimagestores`). Files are found the way containers/common and containers/storage
 * find them; the parsing is pure.
 */
import {join} from 'node:path'

import {parse} from '@decimalturn/toml-patch'

import {readdir, readFile} from '../fs-promises.js'
import {DEFAULT_HOOKS_DIRS} from '../hook/hook-file.js'

/** Who is asking: root reads the system files, others their own first. */
export interface Caller {
  env: NodeJS.ProcessEnv
  uid: number
  home: string
}

export interface ConfigText {
  path: string
  text: string
}

async function readIfThere(path: string): Promise<ConfigText | undefined> {
  try {
    return {path, text: await readFile(path, 'utf8')}
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw error
  }
}

const userConfigDir = (caller: Caller) => caller.env.XDG_CONFIG_HOME || join(caller.home, '.config')

/**
 * The containers.conf files podman reads, lowest precedence first: $CONTAINERS_CONF alone
 * when set; otherwise /usr/share/containers/containers.conf, /etc/containers/containers.conf,
 * /etc/containers/containers.conf.d/*.conf and, for users other than root, their own
 * ~/.config/containers/containers.conf; $CONTAINERS_CONF_OVERRIDE last.
 */
export async function readContainersConf(caller: Caller): Promise<ConfigText[]> {
  const paths: string[] = []
  if (caller.env.CONTAINERS_CONF) {
    paths.push(caller.env.CONTAINERS_CONF)
  } else {
    paths.push('/usr/share/containers/containers.conf', '/etc/containers/containers.conf')
    const dropIns = await readdir('/etc/containers/containers.conf.d').catch(() => [] as string[])
    paths.push(...dropIns.filter((name) => name.endsWith('.conf')).sort().map((name) => join('/etc/containers/containers.conf.d', name)))
    if (caller.uid !== 0) paths.push(join(userConfigDir(caller), 'containers', 'containers.conf'))
  }
  if (caller.env.CONTAINERS_CONF_OVERRIDE) paths.push(caller.env.CONTAINERS_CONF_OVERRIDE)
  const found: ConfigText[] = []
  for (const path of paths) {
    const text = await readIfThere(path)
    if (text) found.push(text)
  }
  return found
}

/** A TOML file's content, or the reason it cannot be read. */
export function parseToml(file: ConfigText): {value: Record<string, unknown>} | {error: string} {
  try {
    return {value: parse(file.text) as Record<string, unknown>}
  } catch (error) {
    return {error: (error as Error).message.split('\n')[0] ?? String(error)}
  }
}

const table = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined

/** `from` of {@link hooksDirsFrom} when no file sets hooks_dir. */
export const DEFAULT_SOURCE = 'defaults'

/** The hooks directories podman uses: the last file setting `[engine] hooks_dir` wins, else podman's defaults. */
export function hooksDirsFrom(parsed: {path: string; value: Record<string, unknown>}[]): {dirs: string[]; from: string} {
  let result = {dirs: [...DEFAULT_HOOKS_DIRS], from: DEFAULT_SOURCE}
  for (const {path, value} of parsed) {
    const dirs = strings(table(value.engine).hooks_dir)
    if (dirs) result = {dirs, from: path}
  }
  return result
}

/**
 * The storage.conf podman uses: $CONTAINERS_STORAGE_CONF; for users other than root their
 * own ~/.config/containers/storage.conf when it exists; else /etc/containers/storage.conf,
 * falling back to /usr/share/containers/storage.conf. `undefined` when there is none.
 */
export async function readStorageConf(caller: Caller): Promise<ConfigText | undefined> {
  if (caller.env.CONTAINERS_STORAGE_CONF) return (await readIfThere(caller.env.CONTAINERS_STORAGE_CONF)) ?? {path: caller.env.CONTAINERS_STORAGE_CONF, text: ''}
  if (caller.uid !== 0) {
    const own = await readIfThere(join(userConfigDir(caller), 'containers', 'storage.conf'))
    if (own) return own
  }
  return (await readIfThere('/etc/containers/storage.conf')) ?? (await readIfThere('/usr/share/containers/storage.conf'))
}

/** `[storage.options] additionalimagestores` of a parsed storage.conf. */
export function additionalImageStores(value: Record<string, unknown>): string[] {
  return strings(table(table(value.storage).options).additionalimagestores) ?? []
}

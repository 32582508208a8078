/**
 * Merge an image's Env, WorkingDir and User into the runtime config podman made for
 * a `--rootfs` container, by podman's own precedence: the user's flags win, the
 * image comes next, podman's defaults last. podman hands a precreate hook no
 * record of which values were defaults, so the defaults are recognised by value
 * (verified with podman 4.3): PATH, TERM and `container` at podman's default values,
 * HOME=/root, working directory `/`, and the root user without `additionalGids`
 * (an explicit `--user 0` carries `additionalGids: [0]`).
 */
import type {RunConfig} from './image-config.js'
import type {ResolvedUser} from './users.js'

/** podman's defaults for the environment; an image value replaces them. */
export const PODMAN_DEFAULT_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  TERM: 'xterm',
  container: 'podman',
}

export interface RuntimeSpec {
  process?: {
    env?: string[]
    cwd?: string
    user?: {uid: number; gid: number; umask?: number; additionalGids?: number[]; username?: string}
  }
  root?: {path?: string}
}

function key(entry: string): string {
  const eq = entry.indexOf('=')
  return eq < 0 ? entry : entry.slice(0, eq)
}

/**
 * Apply `config` to `spec` in place; returns what changed (empty: nothing did).
 * `lookupUser` resolves the image's User in its own /etc/passwd and /etc/group.
 */
export function applyImageConfig(spec: RuntimeSpec, config: RunConfig, lookupUser: (user: string) => ResolvedUser): string[] {
  const changed: string[] = []
  const process = spec.process
  if (!process) return changed
  const env = process.env ?? []
  const imageEnv = new Map((config.Env ?? []).map((e) => [key(e), e]))

  for (const [name, entry] of imageEnv) {
    const index = env.findIndex((e) => key(e) === name)
    if (index < 0) {
      env.push(entry)
      changed.push(`env ${name}`)
    } else if (PODMAN_DEFAULT_ENV[name] !== undefined && env[index] === `${name}=${PODMAN_DEFAULT_ENV[name]}` && env[index] !== entry) {
      env[index] = entry
      changed.push(`env ${name}`)
    }
  }

  if (config.WorkingDir && config.WorkingDir !== '/' && (process.cwd === '/' || process.cwd === undefined)) {
    process.cwd = config.WorkingDir
    changed.push('cwd')
  }

  const user = process.user
  const defaultUser = !user || (user.uid === 0 && user.gid === 0 && user.additionalGids === undefined)
  if (config.User && defaultUser) {
    const resolved = lookupUser(config.User)
    if (resolved.uid !== 0 || resolved.gid !== 0 || resolved.additionalGids.length > 0) {
      process.user = {...user, uid: resolved.uid, gid: resolved.gid, ...(resolved.additionalGids.length ? {additionalGids: resolved.additionalGids} : {})}
      changed.push('user')
      // podman set HOME for root; the image's user has a home of its own (unless the image says otherwise).
      const home = env.findIndex((e) => e === 'HOME=/root')
      if (home >= 0 && resolved.uid !== 0 && !imageEnv.has('HOME')) {
        env[home] = `HOME=${resolved.home || '/'}`
        changed.push('env HOME')
      }
    }
  }
  if (changed.length > 0) process.env = env
  return changed
}

/**
 * Follow one public link of a repository to its flat root, the way the CVMFS client
 * would, but on any file system. We resolve the chain component by component ourselves
 * instead of trusting the kernel because a copy of a repository (or a repository seen
 * without the CVMFS client) shows what only the client knows how to read:
 *
 * - variant symlinks (`$(CVMFS_ARCH:-amd64)`), which the client expands and the kernel
 *   takes literally;
 * - absolute `/cvmfs/<repo>/…` targets (repositories published before late 2019), which
 *   point outside a copy.
 *
 * The result is a real path: runc refuses a rootfs given through a symlink.
 */
import {dirname, isAbsolute, join} from 'node:path'

import {lstat, readlink, realpath, stat} from '../fs-calls.js'
import {NotFoundError} from '../errors.js'

/** Like the kernel's MAXSYMLINKS: more hops than this means a loop. */
export const MAX_LINK_HOPS = 40
const CVMFS_MOUNT = '/cvmfs/'

export interface LinkOptions {
  /** Variables for variant symlinks (CVMFS_ARCH, …); default `process.env`. */
  env?: NodeJS.ProcessEnv
  maxHops?: number
}

/**
 * Expand CVMFS variant-symlink variables in a link target: `$(NAME)` and
 * `$(NAME:-default)`. As in the CVMFS client (SqlDirent::ExpandSymlink), a set variable
 * wins even when empty, an unset one gives the default or the empty string, and a `$(`
 * without its `)` is kept as it is.
 */
export function expandVariantLink(target: string, env: NodeJS.ProcessEnv): string {
  if (!target.includes('$(')) return target
  let out = ''
  let i = 0
  while (i < target.length) {
    const open = target.indexOf('$(', i)
    const close = open < 0 ? -1 : target.indexOf(')', open + 2)
    if (open < 0 || close < 0) break
    out += target.slice(i, open)
    const inner = target.slice(open + 2, close)
    const sep = inner.indexOf(':-')
    const name = sep < 0 ? inner : inner.slice(0, sep)
    const value = env[name]
    out += value ?? (sep < 0 ? '' : inner.slice(sep + 2))
    i = close + 1
  }
  return out + target.slice(i)
}

/** State of one resolution: hop count and the links seen, for messages. */
interface Walk {
  root: string
  env: NodeJS.ProcessEnv
  maxHops: number
  hops: number
  chain: string[]
}

/**
 * Resolve the public link `<root>/<name>` to the real path of the directory it leads to.
 * `root` must be a real path (no symlinks), e.g. from `fs.realpath`. A plain directory
 * in place of the link (a copy made with dereferenced links) is accepted too.
 *
 * @returns the real path, or `undefined` when the link (or a directory above it) does
 *   not exist.
 * @throws NotFoundError `E_DANGLING_LINK` when the link exists but leads nowhere,
 *   `E_LINK_LOOP` after too many hops, `E_NOT_A_DIRECTORY` when it leads to a non-directory.
 */
export async function resolvePublicLink(root: string, name: string, options: LinkOptions = {}): Promise<string | undefined> {
  const walk: Walk = {root, env: options.env ?? process.env, maxHops: options.maxHops ?? MAX_LINK_HOPS, hops: 0, chain: []}
  const linkPath = join(root, name)
  const parts = name.split('/')
  const base = parts.pop()!

  let parent: string
  let info
  try {
    // Directories above the link may be links themselves (e.g. docker.io -> registry.hub.docker.com).
    parent = await follow(root, parts, walk)
    info = await lstat(join(parent, base))
  } catch (error) {
    if (isMissing(error)) return undefined
    throw error
  }

  let final = join(parent, base)
  if (info.isSymbolicLink()) {
    try {
      final = await follow(parent, [base], walk)
    } catch (error) {
      if (!isMissing(error)) throw error
      throw new NotFoundError(`the public link ${linkPath} is dangling: ${walk.chain.join(', ')} leads to nothing`, {
        code: 'E_DANGLING_LINK',
        hint: 'The image may be half-published or garbage-collected: publish it again. For a multi-arch link check CVMFS_ARCH.',
        cause: error,
      })
    }
  }

  const target = await stat(final)
  if (!target.isDirectory()) {
    throw new NotFoundError(`the public link ${linkPath} leads to ${final}, which is not a directory`, {
      code: 'E_NOT_A_DIRECTORY',
      hint: 'A public link must lead to a flat root directory; the repository is damaged: publish the image again.',
    })
  }
  // Already symlink-free by construction; realpath guards against a change under our feet.
  return realpath(final)
}

/**
 * Resolve `components` (relative to the real directory `base`), following every symlink
 * with variant expansion and /cvmfs mapping. Returns a symlink-free path.
 * Throws the file system's ENOENT/ENOTDIR when something does not exist.
 */
async function follow(base: string, components: string[], walk: Walk): Promise<string> {
  let current = base
  // A stack, reversed, so a link's target components are pushed in front cheaply.
  const pending = components.slice().reverse()
  while (pending.length > 0) {
    const component = pending.pop()!
    if (component === '' || component === '.') continue
    if (component === '..') {
      current = dirname(current)
      continue
    }
    const next = join(current, component)
    const info = await lstat(next)
    if (!info.isSymbolicLink()) {
      current = next
      continue
    }
    if (++walk.hops > walk.maxHops) {
      throw new NotFoundError(`too many levels of symbolic links (more than ${walk.maxHops}) at ${next}: ${walk.chain.slice(0, 3).join(', ')}, …`, {
        code: 'E_LINK_LOOP',
        hint: 'The links form a loop; the repository is damaged: publish the image again.',
      })
    }
    const raw = await readlink(next)
    const expanded = expandVariantLink(raw, walk.env)
    const target = await mapCvmfsPath(expanded, walk.root)
    walk.chain.push(`${next} -> ${raw}${target === raw ? '' : ` (read as ${target})`}`)
    if (isAbsolute(target)) current = '/'
    for (const part of target.split('/').reverse()) pending.push(part)
  }
  return current
}

/**
 * An absolute `/cvmfs/<repo>/<rest>` target from a repository published before 2019. When
 * it does not exist here (the root we search is a copy, or the repository is mounted
 * elsewhere) read it as `<root>/<rest>`.
 */
async function mapCvmfsPath(target: string, root: string): Promise<string> {
  if (!target.startsWith(CVMFS_MOUNT)) return target
  try {
    await lstat(target)
    return target
  } catch (error) {
    if (!isMissing(error)) throw error
  }
  const slash = target.indexOf('/', CVMFS_MOUNT.length)
  return slash < 0 ? root : join(root, target.slice(slash + 1))
}

/** ENOENT, or ENOTDIR: a path component is a file where a directory was needed. */
export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

/**
 * Find the flat root of a published image: what `podman run --rootfs $(cvmfs-oci resolve
 * IMAGE)` runs. This runs before every container start, so it only looks where the name
 * says (a handful of lstat/readlink calls) and never scans a repository; only a digest
 * reference without its own link costs one readdir and one small read per tag.
 */
import {join} from 'node:path'

import {readdir, realpath, stat} from '../fs-calls.js'
import {NotFoundError} from '../errors.js'
import {realArchDirs} from './exists.js'
import {FLAT_DIR, flatRootRel, METADATA_DIR, MULTIARCH_DIR, multiarchLinkRel, multiarchMetadataDirRel} from './paths.js'
import {formatReference, fullImageId, type ImageReference, isImageIdPrefix, layoutName, layoutRegistries, MIN_ID_PREFIX, parseReference} from '../reference/reference.js'
import {archDirCandidates, archDirSpelling, hostArch} from './arch-names.js'
import {isMissing, resolvePublicLink} from './link.js'
import {readDuccManifest, readImageRecord} from './list.js'

export interface ResolveOptions {
  /** Repository roots to search, in order (see searchRoots). */
  roots: string[]
  /** Variables for variant symlinks and CVMFS_ARCH; default `process.env`. */
  env?: NodeJS.ProcessEnv
  /**
   * OCI architecture, variant included (`amd64`, `arm64:v8`, `arm:v7`); `linux/arm64/v8`
   * is accepted too. Default: CVMFS_ARCH, else the host's.
   */
  arch?: string
}

export interface Resolved {
  /** Real path of the flat root. */
  path: string
  /** The root (as given) it was found in. */
  root: string
  /** The link name that matched, relative to the root (for an image ID: `.flat/<hh>/<hex>`). */
  name: string
}

/** How many existing tags a not-found message shows per root. */
const MAX_TAGS_SHOWN = 30

export {hostArch}

/**
 * Resolve a reference, or an image ID, to the real path of its flat root, searching
 * `options.roots` in order: the public link under each registry directory name, then
 * `.multiarch/<arch>/`. A digest reference is found by its `:sha256:<hex>` link or by the
 * digests our records hold for that repository's tags.
 *
 * Image IDs as podman reads them: a full ID (`<64 hex>`, `sha256:<64 hex>`) is looked up
 * as `.flat/<hh>/<hex>` only, never as a name; a shorter hex string is tried as a name
 * first and then, if no root has that name, as a unique ID prefix (one `readdir` of
 * `.flat/<hh>/` per root). A hex string never resolves to an image whose ID it is not.
 *
 * @throws UsageError `E_BAD_REFERENCE` for a malformed reference.
 * @throws NotFoundError `E_IMAGE_NOT_FOUND` naming the roots searched and the tags that do
 *   exist; `E_AMBIGUOUS_ID` for an ID prefix that starts more than one image ID;
 *   `E_DANGLING_LINK`, `E_LINK_LOOP` or `E_NOT_A_DIRECTORY` for a broken link (when
 *   no other root has the image).
 */
export async function resolveImage(reference: string | ImageReference, options: ResolveOptions): Promise<Resolved> {
  const input = typeof reference === 'string' ? reference : undefined
  const id = input === undefined ? undefined : fullImageId(input)
  if (id !== undefined) return resolveFullId(id, options.roots)
  const ref = input === undefined ? (reference as ImageReference) : parseReference(input)
  const env = options.env ?? process.env
  // Like a CVMFS client, which sets CVMFS_ARCH to the node's (uname -m) when nothing else does.
  const arch = options.arch ?? env.CVMFS_ARCH ?? hostArch()
  const search = new Search(ref, {...env, CVMFS_ARCH: options.arch === undefined ? arch : archDirSpelling(arch)}, archDirCandidates(arch))

  for (const root of options.roots) {
    const realRoot = await search.realRoot(root)
    if (realRoot === undefined) continue
    for (const registry of layoutRegistries(ref)) {
      const found = ref.digest === undefined
        ? await search.tryName(realRoot, layoutName(ref, registry))
        : await search.byDigest(realRoot, registry, ref.digest)
      if (found) return {...found, root}
    }
  }
  // As podman: a hex string that is no name may be a short image ID.
  const prefix = input !== undefined && isImageIdPrefix(input) ? input : undefined
  if (prefix !== undefined) {
    const found = await search.byIdPrefix(prefix, options.roots)
    if (found) return found
  }
  // A broken link says more than "not found" about why the image does not resolve.
  if (search.broken.length > 0) throw search.broken[0]!
  const idLine = prefix !== undefined
    ? `no image ID starts with ${prefix} either`
    : input !== undefined && /^[a-f0-9]$/.test(input) ? `an image ID prefix needs at least ${MIN_ID_PREFIX} hex digits: "${input}" was looked up as a name only` : undefined
  throw await search.notFound(input ?? formatReference(ref), options.roots, idLine)
}

/** `.flat/<hh>/<hex>` in the first root that has it. */
async function resolveFullId(hex: string, roots: string[]): Promise<Resolved> {
  const name = flatRootRel(`sha256:${hex}`)
  for (const root of roots) {
    const path = await flatRootPath(root, name)
    if (path !== undefined) return {path, root, name}
  }
  throw new NotFoundError([`no image ID is ${hex}: no searched repository has ${name}`, searchedLine(roots)].join('\n'), {
    code: 'E_IMAGE_NOT_FOUND',
    hint: 'Check the ID (cvmfs-oci list shows the IDs of published images), or search the repository that holds it with --root or CVMFS_OCI_ROOTS.',
  })
}

/** The real path of a flat root if it is a directory; undefined when it is not there. */
async function flatRootPath(root: string, rel: string): Promise<string | undefined> {
  try {
    const path = await realpath(join(root, rel))
    return (await stat(path)).isDirectory() ? path : undefined
  } catch (error) {
    if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EACCES') return undefined
    throw error
  }
}

function searchedLine(roots: string[], why: ReadonlyMap<string, string> = new Map()): string {
  return roots.length === 0 ? 'searched: no repository roots were given' : `searched: ${roots.map((r) => (why.has(r) ? `${r} (${why.get(r)})` : r)).join(', ')}`
}

/** One resolution: the candidates tried, and what was seen on the way for the message. */
class Search {
  /** Roots skipped, and why. */
  readonly missing = new Map<string, string>()
  readonly broken: Error[] = []
  /** One readdir per root and registry directory, shared by digest matching and messages. */
  private readonly listings = new Map<string, string[]>()
  private readonly metadataArches = new Map<string, string[]>()

  constructor(
    private readonly ref: ImageReference,
    private readonly env: NodeJS.ProcessEnv,
    private readonly arches: string[],
  ) {}

  /** The real path of a root; undefined (and noted) when it is missing or unreadable. */
  async realRoot(root: string): Promise<string | undefined> {
    try {
      return await realpath(root)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (!isMissing(error) && code !== 'EACCES') throw error
      this.missing.set(root, code === 'EACCES' ? 'permission denied' : 'missing')
      return undefined
    }
  }

  /**
   * The one image whose ID starts with `prefix`, over all roots (the first root holding
   * it); undefined when none does. Reads only `.flat/<hh>/` of each root.
   *
   * @throws NotFoundError `E_AMBIGUOUS_ID` when the prefix starts more than one image ID.
   */
  async byIdPrefix(prefix: string, roots: string[]): Promise<Resolved | undefined> {
    const dir = join(FLAT_DIR, prefix.slice(0, 2))
    const first = new Map<string, Resolved>()
    for (const root of roots) {
      if (this.missing.has(root)) continue
      let entries: string[]
      try {
        entries = await readdir(join(root, dir))
      } catch (error) {
        if (isMissing(error) || (error as NodeJS.ErrnoException).code === 'EACCES') continue
        throw error
      }
      for (const entry of entries.filter((e) => e.startsWith(prefix) && /^[a-f0-9]{64}$/.test(e)).sort()) {
        if (first.has(entry)) continue
        const path = await flatRootPath(root, join(dir, entry))
        if (path !== undefined) first.set(entry, {path, root, name: join(dir, entry)})
      }
    }
    if (first.size > 1) {
      const shown = [...first.values()].map((r) => `  ${r.name.slice(r.name.lastIndexOf('/') + 1)} (in ${r.root})`)
      throw new NotFoundError([`image ID prefix ${prefix} is ambiguous: it starts ${first.size} image IDs`, ...shown].join('\n'), {
        code: 'E_AMBIGUOUS_ID',
        hint: 'Give more digits of the ID, or all 64.',
      })
    }
    return first.values().next().value
  }

  /** The public link `name`, then its `.multiarch/<arch>/` siblings. */
  async tryName(realRoot: string, name: string): Promise<{path: string; name: string} | undefined> {
    for (const candidate of [name, ...this.arches.map((arch) => multiarchLinkRel(arch, name))]) {
      try {
        const path = await resolvePublicLink(realRoot, candidate, {env: this.env})
        if (path !== undefined) return {path, name: candidate}
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error
        // Keep looking (the .multiarch link or another root may work); report it if none does.
        this.broken.push(error)
      }
    }
    return undefined
  }

  /**
   * `<repo>:sha256:<hex>`, else the tag whose record (or manifest) carries that digest. For
   * a multi-platform tag (records per platform only): its index digest means the tag as
   * this node reads it, a platform's manifest or config digest that platform's link.
   */
  async byDigest(realRoot: string, registry: string, digest: string): Promise<{path: string; name: string} | undefined> {
    const {repository} = this.ref
    const direct = await this.tryName(realRoot, `${registry}/${repository}:${digest}`)
    if (direct) return direct

    const prefix = repository.includes('/') ? repository.slice(0, repository.lastIndexOf('/') + 1) : ''
    const entries = await this.tags(realRoot, registry)
    const matches = await Promise.all(entries.map(async (entry): Promise<string | undefined> => {
      if (entry.includes(':sha256:')) return undefined
      const name = `${registry}/${prefix}${entry}`
      const metadataDir = join(realRoot, METADATA_DIR, name)
      const record = await readImageRecord(metadataDir).catch(() => undefined)
      if (record) return record.manifestDigest === digest || record.configDigest === digest ? name : undefined
      // Images DUCC published have no record; their config digest is still comparable.
      const manifest = await readDuccManifest(metadataDir).catch(() => undefined)
      if (manifest) return manifest.configDigest === digest ? name : undefined
      for (const arch of await this.platformDirs(realRoot)) {
        const platform = await readImageRecord(join(realRoot, multiarchMetadataDirRel(arch, name))).catch(() => undefined)
        if (platform?.indexDigest === digest) return name
        if (platform?.manifestDigest === digest || platform?.configDigest === digest) return multiarchLinkRel(arch, name)
      }
      return undefined
    }))
    for (const match of matches) {
      if (match === undefined) continue
      const found = await this.tryName(realRoot, match)
      if (found) return found
    }
    return undefined
  }

  /** The platform directories of `.metadata/.multiarch/` (one readdir per root). */
  async platformDirs(realRoot: string): Promise<string[]> {
    let dirs = this.metadataArches.get(realRoot)
    if (dirs === undefined) {
      dirs = await realArchDirs(join(realRoot, METADATA_DIR, MULTIARCH_DIR))
      this.metadataArches.set(realRoot, dirs)
    }
    return dirs
  }

  /** Entries `<basename>:<tag>` of the directory holding this repository's links, sorted. */
  async tags(realRoot: string, registry: string): Promise<string[]> {
    const key = `${realRoot}\0${registry}`
    let entries = this.listings.get(key)
    if (entries === undefined) {
      const {repository} = this.ref
      const slash = repository.lastIndexOf('/')
      const dir = join(realRoot, registry, slash < 0 ? '' : repository.slice(0, slash))
      const start = `${repository.slice(slash + 1)}:`
      try {
        entries = (await readdir(dir)).filter((e) => e.startsWith(start)).sort()
      } catch (error) {
        if (!isMissing(error)) throw error
        entries = []
      }
      this.listings.set(key, entries)
    }
    return entries
  }

  /** The message for an image no root has: roots searched, and the tags that do exist. */
  async notFound(input: string, roots: string[], idLine?: string): Promise<NotFoundError> {
    const canonical = formatReference(this.ref)
    const lines = [`image ${JSON.stringify(input)}${input === canonical ? '' : ` (${canonical})`} is not published in any searched repository`]
    lines.push(searchedLine(roots, this.missing))
    const basename = this.ref.repository.slice(this.ref.repository.lastIndexOf('/') + 1)
    const existing: string[] = []
    for (const root of roots) {
      if (this.missing.has(root)) continue
      const realRoot = await realpath(root).catch(() => undefined)
      if (realRoot === undefined) continue
      for (const registry of layoutRegistries(this.ref)) {
        const tags = (await this.tags(realRoot, registry)).map((e) => e.slice(basename.length + 1))
        if (tags.length === 0) continue
        const shown = tags.slice(0, MAX_TAGS_SHOWN).map((t) => (t.startsWith('sha256:') ? `@${t}` : t))
        const more = tags.length > MAX_TAGS_SHOWN ? ` and ${tags.length - MAX_TAGS_SHOWN} more` : ''
        existing.push(`  ${join(root, registry, this.ref.repository)}: ${shown.join(', ')}${more}`)
      }
    }
    if (existing.length > 0) {
      lines.push(`tags of ${this.ref.registry}/${this.ref.repository} that exist:`, ...existing)
      // A digest is matched against our records; DUCC-published tags have none for manifests.
      if (this.ref.digest) lines.push(`none of them is recorded with manifest or config digest ${this.ref.digest}`)
    } else {
      lines.push(`no tag of ${this.ref.registry}/${this.ref.repository} exists in these roots`)
    }
    if (idLine !== undefined) lines.push(idLine)
    return new NotFoundError(lines.join('\n'), {
      code: 'E_IMAGE_NOT_FOUND',
      hint: existing.length > 0
        ? 'Use one of the existing tags, or publish this one first.'
        : 'Publish the image first, or search the repository that holds it with --root or CVMFS_OCI_ROOTS.',
    })
  }
}

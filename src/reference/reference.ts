/**
 * Image references the way podman and docker read them, and the names DUCC's layout gives
 * them on disk. Pure: nothing here touches the disk or the network.
 *
 * Grammar (distribution/reference): `[domain/]path[:tag][@digest]`, where a first
 * component counts as a domain only if it contains `.` or `:`, is `localhost`, or is an
 * IPv6 literal in brackets; otherwise the image is on Docker Hub.
 */
import {UsageError} from '../errors.js'

export interface ImageReference {
  /** Registry host as podman names it (`docker.io` for Docker Hub), port included. */
  registry: string
  /** Repository path, e.g. `library/ubuntu`. */
  repository: string
  tag?: string
  /** `sha256:<64 hex>`. */
  digest?: string
}

/** The canonical name of Docker Hub, and the other names it goes by. */
export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry.hub.docker.com'])
/** Where DUCC puts Docker Hub images on disk (it never normalises to docker.io). */
export const DOCKER_HUB_LAYOUT_DIRS = ['registry.hub.docker.com', 'docker.io', 'index.docker.io']
export const DEFAULT_TAG = 'latest'

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`)
const TAG = /^[\w][\w.-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$/
/** A full image ID as podman reads it: 64 hex digits, bare or after `sha256:`. */
const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/
/**
 * The shortest image ID prefix looked up. podman takes any non-empty prefix; flat roots
 * sit in `.flat/<first 2 hex digits>/`, so 2 digits tell which one directory to read.
 */
export const MIN_ID_PREFIX = 2
const ID_PREFIX = new RegExp(`^[a-f0-9]{${MIN_ID_PREFIX},63}$`)
/** distribution's NameTotalLengthMax, applied to `registry/repository`. */
const NAME_MAX = 255
const HINT = 'Write it as podman does: [registry/]repository[:tag][@sha256:<digest>], e.g. docker.io/library/ubuntu:22.04.'
const ID_HINT = 'Name the image as podman does ([registry/]repository[:tag][@sha256:<digest>]); `cvmfs-oci resolve` also takes an image ID: all 64 hex digits (sha256: optional) or a unique prefix of at least 2.'

/**
 * Parse and normalise an image reference as podman does: `ubuntu` becomes
 * `docker.io/library/ubuntu:latest`; Docker Hub's other host names become `docker.io`;
 * other registries are kept exactly, port included. A leading `docker://` is accepted.
 *
 * @throws UsageError (code `E_BAD_REFERENCE`) quoting the input and saying what is wrong.
 */
export function parseReference(input: string): ImageReference {
  const bad = (why: string) => badReference(input, why)
  if (typeof input !== 'string' || input === '') throw bad('it is empty')
  let body = input.startsWith('docker://') ? input.slice('docker://'.length) : input
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(body)) {
    throw bad('an image reference has no URL scheme; leave out everything up to "://"')
  }
  if (/\s/.test(body)) throw bad('it contains white space')
  // Docker's grammar and podman: these are image IDs, never docker.io/library/<hex>.
  const badId = (why: string) => badReference(input, why, ID_HINT)
  if (/^[a-f0-9]{64}$/.test(body)) throw badId('cannot specify 64-byte hexadecimal strings: that is an image ID, not a name')
  if (body.startsWith('sha256:')) {
    throw badId(FULL_ID.test(body) ? 'that is an image ID, not a name' : 'an image ID after "sha256:" must have all of its 64 hex digits (podman: no 64-byte hexadecimal value)')
  }

  let digest: string | undefined
  const at = body.indexOf('@')
  if (at >= 0) {
    digest = body.slice(at + 1)
    body = body.slice(0, at)
    if (digest.includes('@')) throw bad('it has more than one "@"')
    checkDigest(digest, bad)
  }

  let tag: string | undefined
  const colon = body.lastIndexOf(':')
  if (colon > body.lastIndexOf('/')) {
    tag = body.slice(colon + 1)
    body = body.slice(0, colon)
    if (tag === '') throw bad('the tag after ":" is empty')
    if (!TAG.test(tag)) throw bad(`tag "${tag}" is invalid (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`)
  }

  const slash = body.indexOf('/')
  const first = slash < 0 ? '' : body.slice(0, slash)
  const hasDomain = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))
  const ref = buildReference(hasDomain ? first : DOCKER_HUB, hasDomain ? body.slice(slash + 1) : body, bad)
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  if (tag === undefined && digest === undefined) ref.tag = DEFAULT_TAG
  return ref
}

/**
 * The hex of a full image ID (`<64 hex>` or `sha256:<64 hex>`), which podman looks up as an
 * ID only; undefined for anything else.
 */
export function fullImageId(input: string): string | undefined {
  return FULL_ID.exec(input)?.[1]
}

/**
 * Whether podman may read `input` as a short image ID (after failing to find it as a
 * name): hex digits, here at least {@link MIN_ID_PREFIX} of them, fewer than 64.
 */
export function isImageIdPrefix(input: string): boolean {
  return ID_PREFIX.test(input)
}

/**
 * The podman form of a reference: `docker.io/library/ubuntu:22.04`, `reg/repo@sha256:…`,
 * `reg/repo:tag@sha256:…`.
 */
export function formatReference(ref: ImageReference): string {
  let out = `${ref.registry}/${ref.repository}`
  if (ref.tag !== undefined) out += `:${ref.tag}`
  if (ref.digest !== undefined) out += `@${ref.digest}`
  return out
}

/**
 * Registry directory names under which an image may sit on disk, the first being the one
 * to write. DUCC keeps Docker Hub images under `registry.hub.docker.com/`; the others are
 * accepted because hand-made or older repositories use them.
 */
export function layoutRegistries(ref: ImageReference): string[] {
  return ref.registry === DOCKER_HUB ? [...DOCKER_HUB_LAYOUT_DIRS] : [ref.registry]
}

/**
 * The public link name of an image, relative to the repository root:
 * `registry.hub.docker.com/library/ubuntu:22.04`. A digest-only reference is named
 * `<registry>/<repository>:sha256:<hex>`; with both tag and digest the tag names it.
 */
export function layoutName(ref: ImageReference, registryDir: string = layoutRegistries(ref)[0]!): string {
  const suffix = ref.tag ?? ref.digest ?? DEFAULT_TAG
  return `${registryDir}/${ref.repository}:${suffix}`
}

/**
 * The reference a public link name stands for: the inverse of {@link layoutName}. The
 * first component is always the registry directory, even without a dot in it.
 *
 * @throws UsageError (code `E_BAD_REFERENCE`) when the name is not a valid layout name.
 */
export function parseLayoutName(name: string): ImageReference {
  const bad = (why: string) => badReference(name, `not a layout name: ${why}`)
  const slash = name.indexOf('/')
  if (slash <= 0) throw bad('it has no registry directory')
  const colon = name.lastIndexOf(':')
  if (colon <= name.lastIndexOf('/')) throw bad('it has no ":<tag>"')
  let path = name.slice(slash + 1, colon)
  let suffix = name.slice(colon + 1)
  // `<repo>:sha256:<hex>`: the last colon is inside the digest.
  if (path.endsWith(':sha256')) {
    path = path.slice(0, -':sha256'.length)
    suffix = `sha256:${suffix}`
  }
  const ref = buildReference(name.slice(0, slash), path, bad)
  if (suffix.startsWith('sha256:')) {
    checkDigest(suffix, bad)
    ref.digest = suffix
  } else if (TAG.test(suffix)) {
    ref.tag = suffix
  } else {
    throw bad(`tag "${suffix}" is invalid`)
  }
  return ref
}

/** Validate registry and path, apply Docker Hub's aliases and its `library/` prefix. */
function buildReference(registry: string, path: string, bad: (why: string) => Error): ImageReference {
  if (!DOMAIN.test(registry)) throw bad(`registry "${registry}" is not a valid host[:port]`)
  if (path === '') throw bad('the repository name is missing')
  const components = path.split('/')
  for (const component of components) {
    if (component === '') throw bad(`repository "${path}" has an empty path component`)
    if (!PATH_COMPONENT.test(component)) {
      const why = component !== component.toLowerCase() ? 'must be lowercase' : 'may hold only a-z, 0-9 and single ".", "_", "__" or "-" between them'
      throw bad(`repository component "${component}" ${why}`)
    }
  }
  let repository = path
  if (DOCKER_HUB_ALIASES.has(registry.toLowerCase())) {
    registry = DOCKER_HUB
    // Official images live under library/ on Docker Hub.
    if (components.length === 1) repository = `library/${path}`
  }
  if (registry.length + 1 + repository.length > NAME_MAX) {
    throw bad(`the name is longer than ${NAME_MAX} characters`)
  }
  return {registry, repository}
}

function checkDigest(digest: string, bad: (why: string) => Error): void {
  if (DIGEST.test(digest)) return
  if (digest === '') throw bad('the digest after "@" is empty')
  if (!digest.startsWith('sha256:')) throw bad(`digest "${digest}" is not supported: only sha256:<64 hex> digests are`)
  throw bad(`digest "${digest}" must be "sha256:" followed by 64 lowercase hex digits`)
}

function badReference(input: string, why: string, hint = HINT): UsageError {
  return new UsageError(`invalid image reference ${JSON.stringify(String(input))}: ${why}`, {
    code: 'E_BAD_REFERENCE',
    hint,
  })
}

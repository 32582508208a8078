/**
 * Platforms: podman's `--platform os/arch[/variant]`, the host's own platform, and
 * picking one image out of a multi-platform index the way containers/image (podman,
 * skopeo) does, so that `cvmfs-oci` and `podman pull` agree on which image a tag means.
 */
import {NotFoundError, UsageError} from '../errors.js'
import type {Descriptor, ImageIndex} from './documents.js'
import {isManifestMediaType} from './media-types.js'

export interface PlatformSpec {
  os: string
  architecture: string
  variant?: string
}

// One component of a platform: Go's GOOS/GOARCH spellings and OCI variants.
const COMPONENT = /^[a-z0-9][a-z0-9._-]*$/

/**
 * Parse podman's `--platform` syntax, `os/arch[/variant]` (e.g. `linux/arm64/v8`).
 * Case is folded and common architecture aliases are mapped to OCI names
 * (`x86_64` → `amd64`, `aarch64` → `arm64`, `i386` → `386`, `armhf` → `arm/v7`), as
 * containerd's parser does; a variant given is kept as written.
 *
 * @throws UsageError `E_BAD_PLATFORM`
 */
export function parsePlatform(s: string): PlatformSpec {
  const parts = s.trim().toLowerCase().split('/')
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => COMPONENT.test(p))) {
    throw new UsageError(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`, {
      code: 'E_BAD_PLATFORM',
      hint: 'Use the same form as podman --platform.',
    })
  }
  const [os, arch, variant] = parts as [string, string, string | undefined]
  const alias = archAlias(arch)
  const result: PlatformSpec = {os: osAlias(os), architecture: alias.architecture}
  const v = variant ?? alias.variant
  if (v !== undefined) result.variant = v
  return result
}

/** `os/arch[/variant]`, e.g. `linux/arm64/v8`; the inverse of {@link parsePlatform}. */
export function formatPlatform(p: PlatformSpec): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`
}

/** The platform this process runs on, in OCI names. */
export function hostPlatform(): PlatformSpec {
  const variables = process.config.variables as unknown as Record<string, unknown>
  return platformFromNode(process.platform, process.arch, variables['arm_version'])
}

/**
 * Map Node's `process.platform` / `process.arch` (and, for 32-bit ARM, the
 * `arm_version` Node was built for) to OCI names. Separate from {@link hostPlatform}
 * so that every mapping can be tested on any machine.
 */
export function platformFromNode(platform: string, arch: string, armVersion?: unknown): PlatformSpec {
  const os = platform === 'win32' ? 'windows' : platform === 'sunos' ? 'solaris' : platform
  switch (arch) {
    case 'x64':
      return {os, architecture: 'amd64'}
    case 'ia32':
      return {os, architecture: '386'}
    case 'arm64':
      return {os, architecture: 'arm64', variant: 'v8'}
    case 'arm': {
      const level = /^\d+$/.test(String(armVersion)) ? String(armVersion) : '7'
      return {os, architecture: 'arm', variant: `v${level}`}
    }
    case 'ppc64':
      // Node says ppc64 for both endiannesses; Linux on POWER is little-endian
      // nowadays, AIX is big-endian (and Go calls it ppc64 there).
      return {os, architecture: os === 'aix' ? 'ppc64' : 'ppc64le'}
    case 'mipsel':
      return {os, architecture: 'mipsle'}
    default:
      // s390x, riscv64, loong64, mips … are spelled the same in Node and OCI.
      return {os, architecture: arch}
  }
}

/**
 * Canonical form used for comparison and directory names: OCI spellings, and the
 * variants that are implied when absent (`arm64` is `v8`, `arm` is `v7`, a bare
 * digit `7` is `v7`), as containerd normalises them.
 */
export function normalizePlatform(p: PlatformSpec): PlatformSpec {
  const alias = archAlias(p.architecture.toLowerCase())
  const architecture = alias.architecture
  let variant = (p.variant ?? alias.variant ?? '').toLowerCase()
  if ((architecture === 'arm' || architecture === 'arm64') && /^\d+$/.test(variant)) variant = `v${variant}`
  if (architecture === 'arm64' && variant === '') variant = 'v8'
  if (architecture === 'arm' && variant === '') variant = 'v7'
  const result: PlatformSpec = {os: osAlias(p.os.toLowerCase()), architecture}
  if (variant !== '') result.variant = variant
  return result
}

/**
 * DUCC's directory name for an architecture under `.multiarch/`: `amd64`,
 * `arm64:v8`, `arm:v7` (the form CVMFS_ARCH takes on clients).
 */
export function archDirName(p: PlatformSpec): string {
  const n = normalizePlatform(p)
  return n.variant ? `${n.architecture}:${n.variant}` : n.architecture
}

/**
 * DUCC's `.multiarch` directory for an index entry: its architecture, plus `:variant`
 * when the entry states one, as written (`amd64`, `arm64:v8`, an entry saying only
 * `arm64` is `arm64`). Alias links (layout/arch-names.ts) bridge the other spellings.
 */
export function multiarchDir(p: {architecture: string; variant?: string}): string {
  return p.variant ? `${p.architecture}:${p.variant}` : p.architecture
}

/** What `--platform` asks for: every platform of an index, or a list (often one). */
export type PlatformRequest = {all: true} | {all: false; platforms: PlatformSpec[]}

/**
 * `--platform all`, or OS/ARCH[/VARIANT] platforms separated by commas.
 *
 * @throws UsageError `E_BAD_PLATFORM`
 */
export function parsePlatformRequest(s: string): PlatformRequest {
  if (s.trim().toLowerCase() === 'all') return {all: true}
  const parts = s.split(',')
  if (parts.length > 1 && parts.some((p) => p.trim() === '' || p.trim().toLowerCase() === 'all')) {
    throw new UsageError(`invalid platform list "${s}": expected all, or os/arch[/variant] separated by commas`, {
      code: 'E_BAD_PLATFORM',
      hint: 'E.g. --platform all, or --platform linux/amd64,linux/arm64.',
    })
  }
  return {all: false, platforms: parts.map(parsePlatform)}
}

/** What `--platform` asks of a publish (publish/publish-image.ts's PublishOptions). */
export interface PlatformChoice {
  /** The platform to publish from an index; `explicit` when the user gave --platform. */
  platform: PlatformSpec
  explicitPlatform: boolean
  /** `all`, or several platforms: every such platform of an index is published. */
  platforms?: PlatformRequest
}

/**
 * What `--platform` (or a wish list's `platform:`) means: absent, this host's platform,
 * taken from an index and warned about otherwise; one platform, that one, enforced;
 * `all` or several, every such platform of an index.
 *
 * @throws UsageError `E_BAD_PLATFORM`
 */
export function platformOptions(flag: string | undefined): PlatformChoice {
  if (flag === undefined) return {platform: hostPlatform(), explicitPlatform: false}
  const request = parsePlatformRequest(flag)
  if (!request.all && request.platforms.length === 1) return {platform: request.platforms[0]!, explicitPlatform: true}
  return {platform: hostPlatform(), explicitPlatform: false, platforms: request}
}

/**
 * The entries of an index a request publishes, in order: for `all` every platform image
 * (as {@link choosePlatform} sees them, the first of entries sharing a `.multiarch`
 * directory), for a list each platform's pick.
 *
 * @throws NotFoundError `E_NO_PLATFORM` for a listed platform the index lacks;
 *   UsageError `E_BAD_PLATFORM` when two listed platforms pick the same entry.
 */
export function choosePlatforms(index: ImageIndex, request: PlatformRequest, what: string): Descriptor[] {
  const chosen: Descriptor[] = []
  const dirs = new Set<string>()
  if (request.all) {
    for (const d of index.manifests.filter(isPlatformImage)) {
      const dir = multiarchDir(d.platform!)
      if (!dirs.has(dir)) chosen.push(d)
      dirs.add(dir)
    }
    return chosen
  }
  for (const wanted of request.platforms) {
    const d = choosePlatform(index, wanted, what)
    if (dirs.has(multiarchDir(d.platform!))) {
      throw new UsageError(`${what}: --platform ${formatPlatform(wanted)} picks ${formatPlatform(d.platform!)}, which another listed platform picked already`, {
        code: 'E_BAD_PLATFORM',
        hint: 'List each platform once.',
      })
    }
    dirs.add(multiarchDir(d.platform!))
    chosen.push(d)
  }
  return chosen
}

/**
 * Pick the image for `wanted` from an index.
 *
 * Like containers/image: os and architecture must match; the variant must match
 * after normalisation (`arm64` = `arm64/v8`, `arm` = `arm/v7`), except that a
 * lower variant runs on a higher one for `arm` (v7 host: v7, v6, v5) and `amd64`
 * (v3 host: v3, v2, v1/none), and an entry without a variant is a last resort. The
 * closest variant wins; on a tie, the first entry. Entries without a platform,
 * attestation manifests (buildx's `unknown/unknown` entries) and entries that are
 * not image manifests are never chosen.
 *
 * @param what names the index in messages, e.g. `docker://x/y:1`
 * @throws NotFoundError `E_NO_PLATFORM`, listing the platforms the index offers
 */
export function choosePlatform(index: ImageIndex, wanted: PlatformSpec, what: string): Descriptor {
  const want = matchForm(wanted)
  const candidates = index.manifests.filter(isPlatformImage)
  let best: {descriptor: Descriptor; distance: number} | undefined
  for (const descriptor of candidates) {
    const have = matchForm(descriptor.platform!)
    if (have.os !== want.os || have.architecture !== want.architecture) continue
    const distance = variantDistance(want.architecture, want.variant, have.variant, descriptor.platform!.variant)
    if (distance === undefined) continue
    if (!best || distance < best.distance) best = {descriptor, distance}
  }
  if (best) return best.descriptor

  const offered = [...new Set(candidates.map((d) => formatPlatform(d.platform!)))]
  if (offered.length === 0) {
    throw new NotFoundError(`${what} has no image for ${formatPlatform(wanted)}: its index names no platforms`, {
      code: 'E_NO_PLATFORM',
      hint: 'Name one of its manifests by digest instead (<name>@sha256:<hex>).',
    })
  }
  throw new NotFoundError(`${what} has no image for ${formatPlatform(wanted)}; it offers ${offered.join(', ')}`, {
    code: 'E_NO_PLATFORM',
    hint: `Choose one of these with --platform, e.g. --platform ${offered[0]}.`,
  })
}

/** An index entry that is a runnable image for some platform. */
function isPlatformImage(d: Descriptor): boolean {
  if (!d.platform || !isManifestMediaType(d.mediaType)) return false
  if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false
  return d.platform.os !== 'unknown' && d.platform.architecture !== 'unknown'
}

// The normal form plus amd64's implied baseline, so that `amd64` and `amd64/v1` compare equal.
function matchForm(p: PlatformSpec): Required<PlatformSpec> {
  const n = normalizePlatform(p)
  const variant = n.variant ?? (n.architecture === 'amd64' ? 'v1' : '')
  return {os: n.os, architecture: n.architecture, variant}
}

// Architectures whose numbered variants are supersets of the lower ones.
const DOWNWARD_COMPATIBLE = new Set(['arm', 'amd64'])
// Worse than any real distance between numbered variants.
const LAST_RESORT = 1000

function variantDistance(arch: string, wanted: string, have: string, rawHave: string | undefined): number | undefined {
  // Equal after normalisation; an entry that states the variant beats one that implies it.
  if (wanted === have) return rawHave ? 0 : 0.5
  const w = /^v(\d+)$/.exec(wanted)
  const h = /^v(\d+)$/.exec(have)
  if (DOWNWARD_COMPATIBLE.has(arch) && w && h && Number(h[1]) <= Number(w[1])) return Number(w[1]) - Number(h[1])
  // containers/image also accepts an image that states no variant at all.
  return rawHave ? undefined : LAST_RESORT
}

function osAlias(os: string): string {
  return os === 'macos' ? 'darwin' : os
}

function archAlias(arch: string): {architecture: string; variant?: string} {
  switch (arch) {
    case 'x86_64':
    case 'x86-64':
      return {architecture: 'amd64'}
    case 'aarch64':
      return {architecture: 'arm64'}
    case 'i386':
    case 'i686':
      return {architecture: '386'}
    case 'armhf':
      return {architecture: 'arm', variant: 'v7'}
    case 'armel':
      return {architecture: 'arm', variant: 'v6'}
    default:
      return {architecture: arch}
  }
}

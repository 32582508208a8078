import {describe, expect, it} from 'vitest'

import {NotFoundError, UsageError} from '../../src/errors.js'
import type {Descriptor, ImageIndex, Platform} from '../../src/oci/documents.js'
import {
  type PlatformSpec,
  archDirName,
  choosePlatform,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformFromNode,
} from '../../src/oci/platform.js'

describe('parsePlatform', () => {
  it.each<[string, PlatformSpec]>([
    ['linux/amd64', {os: 'linux', architecture: 'amd64'}],
    ['linux/arm64/v8', {os: 'linux', architecture: 'arm64', variant: 'v8'}],
    ['linux/arm/v7', {os: 'linux', architecture: 'arm', variant: 'v7'}],
    ['Linux/AMD64', {os: 'linux', architecture: 'amd64'}],
    [' linux/ppc64le ', {os: 'linux', architecture: 'ppc64le'}],
    ['linux/x86_64', {os: 'linux', architecture: 'amd64'}],
    ['linux/aarch64', {os: 'linux', architecture: 'arm64'}],
    ['linux/i386', {os: 'linux', architecture: '386'}],
    ['linux/armhf', {os: 'linux', architecture: 'arm', variant: 'v7'}],
    ['linux/amd64/v3', {os: 'linux', architecture: 'amd64', variant: 'v3'}],
    ['windows/amd64', {os: 'windows', architecture: 'amd64'}],
  ])('%j', (input, expected) => {
    expect(parsePlatform(input)).toStrictEqual(expected)
  })

  it.each(['', 'linux', 'amd64', 'linux/', '/amd64', 'linux//v7', 'linux/arm/v7/extra', 'linux/am d64', 'linux/$(x)', '../x'])(
    'rejects %j',
    (input) => {
      let caught: unknown
      try {
        parsePlatform(input)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(UsageError)
      expect((caught as UsageError).code).toBe('E_BAD_PLATFORM')
      expect((caught as UsageError).exitCode).toBe(2)
      expect((caught as UsageError).message).toContain('expected os/arch[/variant]')
    },
  )
})

describe('formatPlatform, normalizePlatform, archDirName', () => {
  it.each<[PlatformSpec, string, string]>([
    [{os: 'linux', architecture: 'amd64'}, 'linux/amd64', 'amd64'],
    [{os: 'linux', architecture: 'arm64', variant: 'v8'}, 'linux/arm64/v8', 'arm64:v8'],
    [{os: 'linux', architecture: 'arm64'}, 'linux/arm64', 'arm64:v8'],
    [{os: 'linux', architecture: 'arm', variant: 'v7'}, 'linux/arm/v7', 'arm:v7'],
    [{os: 'linux', architecture: 'arm'}, 'linux/arm', 'arm:v7'],
    [{os: 'linux', architecture: 'arm', variant: 'v6'}, 'linux/arm/v6', 'arm:v6'],
    [{os: 'linux', architecture: 'arm', variant: '6'}, 'linux/arm/6', 'arm:v6'],
    [{os: 'linux', architecture: '386'}, 'linux/386', '386'],
    [{os: 'linux', architecture: 'x86_64'}, 'linux/x86_64', 'amd64'],
  ])('%j', (p, formatted, dir) => {
    expect(formatPlatform(p)).toBe(formatted)
    expect(archDirName(p)).toBe(dir)
  })

  it('normalises arm64 to v8 and keeps amd64 without a variant', () => {
    expect(normalizePlatform({os: 'Linux', architecture: 'aarch64'})).toStrictEqual({os: 'linux', architecture: 'arm64', variant: 'v8'})
    expect(normalizePlatform({os: 'linux', architecture: 'amd64'})).toStrictEqual({os: 'linux', architecture: 'amd64'})
  })

  it('round-trips through parsePlatform', () => {
    for (const s of ['linux/amd64', 'linux/arm/v6', 'linux/arm64/v8', 'linux/s390x']) expect(formatPlatform(parsePlatform(s))).toBe(s)
  })
})

describe('platformFromNode / hostPlatform', () => {
  it.each<[string, string, unknown, PlatformSpec]>([
    ['linux', 'x64', undefined, {os: 'linux', architecture: 'amd64'}],
    ['linux', 'arm64', undefined, {os: 'linux', architecture: 'arm64', variant: 'v8'}],
    ['linux', 'ia32', undefined, {os: 'linux', architecture: '386'}],
    ['linux', 'arm', '7', {os: 'linux', architecture: 'arm', variant: 'v7'}],
    ['linux', 'arm', '6', {os: 'linux', architecture: 'arm', variant: 'v6'}],
    ['linux', 'arm', 6, {os: 'linux', architecture: 'arm', variant: 'v6'}],
    ['linux', 'arm', undefined, {os: 'linux', architecture: 'arm', variant: 'v7'}],
    ['linux', 'ppc64', undefined, {os: 'linux', architecture: 'ppc64le'}],
    ['aix', 'ppc64', undefined, {os: 'aix', architecture: 'ppc64'}],
    ['linux', 's390x', undefined, {os: 'linux', architecture: 's390x'}],
    ['linux', 'riscv64', undefined, {os: 'linux', architecture: 'riscv64'}],
    ['linux', 'mipsel', undefined, {os: 'linux', architecture: 'mipsle'}],
    ['win32', 'x64', undefined, {os: 'windows', architecture: 'amd64'}],
    ['darwin', 'arm64', undefined, {os: 'darwin', architecture: 'arm64', variant: 'v8'}],
  ])('%s/%s (arm_version %j)', (platform, arch, armVersion, expected) => {
    expect(platformFromNode(platform, arch, armVersion)).toStrictEqual(expected)
  })

  it('describes this machine in OCI names', () => {
    const host = hostPlatform()
    expect(host.os).toBe(process.platform === 'win32' ? 'windows' : process.platform)
    expect(host.architecture).not.toMatch(/^(x64|ia32|aarch64)$/)
    expect(formatPlatform(parsePlatform(formatPlatform(host)))).toBe(formatPlatform(host))
  })
})

const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

/** An index entry for `os/arch[/variant]`, its digest derived from the name so results read well. */
function entry(platform: string | undefined, extra: Partial<Descriptor> = {}): Descriptor {
  const name = platform ?? 'none'
  const d: Descriptor = {mediaType: MANIFEST, size: 528, digest: `sha256:${name}`, ...extra}
  if (platform) {
    const [os, architecture, variant] = platform.split('/') as [string, string, string?]
    const p: Platform = {os, architecture}
    if (variant !== undefined) p.variant = variant
    d.platform = p
  }
  return d
}

const index = (...manifests: Descriptor[]): ImageIndex => ({schemaVersion: 2, manifests})

/** Docker Hub's busybox-like list: every arm flavour, and buildx attestation entries. */
const hub = index(
  entry('linux/amd64'),
  entry('linux/arm/v5'),
  entry('linux/arm/v6'),
  entry('linux/arm/v7'),
  entry('linux/arm64/v8'),
  entry('linux/386'),
  entry('linux/ppc64le'),
  entry('linux/s390x'),
  entry('unknown/unknown', {
    mediaType: OCI_MANIFEST,
    digest: 'sha256:attestation',
    annotations: {'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': 'sha256:linux/amd64'},
  }),
)

describe('choosePlatform', () => {
  it.each<[string, ImageIndex, string, string]>([
    ['exact amd64', hub, 'linux/amd64', 'sha256:linux/amd64'],
    ['arm64 without variant means v8', hub, 'linux/arm64', 'sha256:linux/arm64/v8'],
    ['arm64/v8', hub, 'linux/arm64/v8', 'sha256:linux/arm64/v8'],
    ['aarch64 alias', hub, 'linux/aarch64', 'sha256:linux/arm64/v8'],
    ['arm defaults to v7', hub, 'linux/arm', 'sha256:linux/arm/v7'],
    ['arm/v6 exact', hub, 'linux/arm/v6', 'sha256:linux/arm/v6'],
    ['arm/v5 exact', hub, 'linux/arm/v5', 'sha256:linux/arm/v5'],
    ['arm/v8 (AArch32) takes the closest lower variant', hub, 'linux/arm/v8', 'sha256:linux/arm/v7'],
    ['amd64/v3 runs the baseline image', hub, 'linux/amd64/v3', 'sha256:linux/amd64'],
    ['arm/v7 host takes v6 when there is no v7', index(entry('linux/arm/v5'), entry('linux/arm/v6')), 'linux/arm/v7', 'sha256:linux/arm/v6'],
    [
      'an exact variant beats an implied one',
      index(entry('linux/arm'), entry('linux/arm/v7')),
      'linux/arm/v7',
      'sha256:linux/arm/v7',
    ],
    ['an implied arm64 variant matches v8', index(entry('linux/arm64')), 'linux/arm64/v8', 'sha256:linux/arm64'],
    [
      'amd64 levels: v3 host prefers v3 over v2 and baseline',
      index(entry('linux/amd64'), entry('linux/amd64/v2'), entry('linux/amd64/v3')),
      'linux/amd64/v3',
      'sha256:linux/amd64/v3',
    ],
    [
      'amd64 levels: a plain amd64 host never takes v2',
      index(entry('linux/amd64/v2'), entry('linux/amd64')),
      'linux/amd64',
      'sha256:linux/amd64',
    ],
    [
      'an image stating no variant is a last resort',
      index(entry('linux/riscv64')),
      'linux/riscv64/rva22',
      'sha256:linux/riscv64',
    ],
    [
      'first of equal entries wins',
      index(entry('linux/amd64', {digest: 'sha256:first'}), entry('linux/amd64', {digest: 'sha256:second'})),
      'linux/amd64',
      'sha256:first',
    ],
    [
      'attestations are skipped even when their platform looks real',
      index(
        entry('linux/amd64', {mediaType: OCI_MANIFEST, digest: 'sha256:att', annotations: {'vnd.docker.reference.type': 'attestation-manifest'}}),
        entry('linux/amd64'),
      ),
      'linux/amd64',
      'sha256:linux/amd64',
    ],
    [
      'nested indexes are not images',
      index(entry('linux/amd64', {mediaType: 'application/vnd.oci.image.index.v1+json', digest: 'sha256:nested'}), entry('linux/amd64')),
      'linux/amd64',
      'sha256:linux/amd64',
    ],
  ])('%s', (_name, idx, wanted, digest) => {
    expect(choosePlatform(idx, parsePlatform(wanted), 'docker://x/y:1').digest).toBe(digest)
  })

  it.each<[string, ImageIndex, string, RegExp, RegExp]>([
    [
      'an architecture the index lacks',
      hub,
      'linux/riscv64',
      /^docker:\/\/x\/y:1 has no image for linux\/riscv64; it offers linux\/amd64, linux\/arm\/v5, linux\/arm\/v6, linux\/arm\/v7, linux\/arm64\/v8, linux\/386, linux\/ppc64le, linux\/s390x$/,
      /--platform linux\/amd64/,
    ],
    ['another OS', hub, 'windows/amd64', /has no image for windows\/amd64; it offers linux\/amd64/, /--platform/],
    ['a lower arm variant than offered', index(entry('linux/arm/v7')), 'linux/arm/v6', /has no image for linux\/arm\/v6; it offers linux\/arm\/v7$/, /--platform linux\/arm\/v7/],
    ['a plain amd64 host and only v3 images', index(entry('linux/amd64/v3')), 'linux/amd64', /it offers linux\/amd64\/v3$/, /--platform linux\/amd64\/v3/],
    ['entries without platform', index(entry(undefined), entry(undefined)), 'linux/amd64', /its index names no platforms/, /by digest/],
    [
      'only attestations',
      index(entry('unknown/unknown', {annotations: {'vnd.docker.reference.type': 'attestation-manifest'}})),
      'linux/amd64',
      /its index names no platforms/,
      /by digest/,
    ],
  ])('fails for %s', (_name, idx, wanted, message, hint) => {
    let caught: unknown
    try {
      choosePlatform(idx, parsePlatform(wanted), 'docker://x/y:1')
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(NotFoundError)
    const error = caught as NotFoundError
    expect(error.code).toBe('E_NO_PLATFORM')
    expect(error.exitCode).toBe(3)
    expect(error.message).toMatch(message)
    expect(error.hint).toMatch(hint)
    expect(error.message).not.toContain('unknown')
  })
})

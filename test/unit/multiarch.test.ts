/**
 * Multi-platform images in DUCC's layout, without any engine: which platforms of an index
 * `--platform all` (or a list) publishes and under which `.multiarch` directory, the link
 * targets DUCC writes, the alias links for the names CVMFS clients give CVMFS_ARCH
 * (`uname -m`), and the wish-list key. test/e2e/multiarch*.test.ts publishes real indexes.
 */
import {lstat, mkdir, readdir, readlink, rm, symlink} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {NotFoundError, UsageError} from '../../src/errors.js'
import {ARCH_ALIASES, archDirCandidates} from '../../src/layout/arch-names.js'
import {syncArchAliases} from '../../src/layout/multiarch.js'
import {flatRootRel, multiarchLinkTarget, variantLinkTarget} from '../../src/layout/paths.js'
import type {Descriptor, ImageIndex} from '../../src/oci/documents.js'
import {choosePlatforms, multiarchDir, parsePlatformRequest} from '../../src/oci/platform.js'
import {parseWishlist} from '../../src/sync/wishlist.js'
import {useTempDir} from '../helpers/temp-dir.js'

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
function entry(platform: string, extra: Partial<Descriptor> = {}): Descriptor {
  const [os, architecture, variant] = platform.split('/') as [string, string, string?]
  return {mediaType: MANIFEST, size: 1, digest: `sha256:${platform}`, platform: {os, architecture, ...(variant ? {variant} : {})}, ...extra}
}
const index = (...manifests: Descriptor[]): ImageIndex => ({schemaVersion: 2, manifests})

describe('parsePlatformRequest', () => {
  it('reads all, one platform, and a comma-separated list', () => {
    expect(parsePlatformRequest('all')).toEqual({all: true})
    expect(parsePlatformRequest(' ALL ')).toEqual({all: true})
    expect(parsePlatformRequest('linux/amd64,linux/arm64/v8')).toEqual({
      all: false,
      platforms: [
        {os: 'linux', architecture: 'amd64'},
        {os: 'linux', architecture: 'arm64', variant: 'v8'},
      ],
    })
    expect(parsePlatformRequest('linux/amd64')).toEqual({all: false, platforms: [{os: 'linux', architecture: 'amd64'}]})
  })

  it.each(['', 'linux/amd64,', 'all,linux/amd64', 'linux/amd64,,linux/arm64', 'linux'])('rejects %j', (input) => {
    expect(() => parsePlatformRequest(input)).toThrow(UsageError)
  })
})

describe('multiarchDir: the directory DUCC names after an index entry', () => {
  it.each([
    [{architecture: 'amd64'}, 'amd64'],
    [{architecture: 'arm64', variant: 'v8'}, 'arm64:v8'],
    // As written in the index, not normalised: DUCC's alias links bridge the two.
    [{architecture: 'arm64'}, 'arm64'],
    [{architecture: 'arm', variant: 'v7'}, 'arm:v7'],
    [{architecture: '386'}, '386'],
    [{architecture: 'amd64', variant: ''}, 'amd64'],
  ])('%j -> %s', (platform, dir) => {
    expect(multiarchDir(platform)).toBe(dir)
  })
})

describe('choosePlatforms', () => {
  const hub = index(
    entry('linux/amd64'),
    entry('linux/arm64/v8'),
    entry('linux/arm/v7'),
    entry('unknown/unknown', {annotations: {'vnd.docker.reference.type': 'attestation-manifest'}}),
    entry('linux/amd64', {digest: 'sha256:second-amd64'}),
  )

  it('takes every platform image once (the first of equal directories), never attestations', () => {
    expect(choosePlatforms(hub, {all: true}, 'x').map((d) => d.digest)).toEqual(['sha256:linux/amd64', 'sha256:linux/arm64/v8', 'sha256:linux/arm/v7'])
  })

  it('takes the listed platforms as podman would pick each', () => {
    const request = parsePlatformRequest('linux/arm64,linux/amd64')
    expect(choosePlatforms(hub, request, 'x').map((d) => d.digest)).toEqual(['sha256:linux/arm64/v8', 'sha256:linux/amd64'])
  })

  it('fails for a listed platform the index lacks, naming what it offers', () => {
    expect(() => choosePlatforms(hub, parsePlatformRequest('linux/amd64,linux/s390x'), 'docker://x/y:1')).toThrow(NotFoundError)
    expect(() => choosePlatforms(hub, parsePlatformRequest('linux/amd64,linux/s390x'), 'docker://x/y:1')).toThrow(/no image for linux\/s390x; it offers linux\/amd64/)
  })

  it('fails when two listed platforms pick the same image', () => {
    expect(() => choosePlatforms(hub, parsePlatformRequest('linux/arm64,linux/arm64/v8'), 'x')).toThrow(UsageError)
  })
})

describe('link targets', () => {
  const config = `sha256:${'c'.repeat(64)}`
  it("writes the public link as DUCC's variant link, one ../ per directory of the name", () => {
    expect(variantLinkTarget('registry.hub.docker.com/library/x:1', 'amd64')).toBe('../../.multiarch/$(CVMFS_ARCH:-amd64)/registry.hub.docker.com/library/x:1')
    expect(variantLinkTarget('127.0.0.1:5000/a/b/c:2', 'arm64')).toBe('../../../.multiarch/$(CVMFS_ARCH:-arm64)/127.0.0.1:5000/a/b/c:2')
  })

  it('links .multiarch/<arch>/<name> relatively to the flat root, as DUCC computes it', () => {
    expect(multiarchLinkTarget('arm64:v8', 'registry.hub.docker.com/library/x:1', config)).toBe(`../../../../${flatRootRel(config)}`)
    expect(multiarchLinkTarget('amd64', 'quay.io/x:1', config)).toBe(`../../../${flatRootRel(config)}`)
  })
})

describe('architecture names', () => {
  it("has DUCC's alias table, plus the uname -m names CVMFS 2.12 clients set CVMFS_ARCH to", () => {
    // DUCC's archAliases (cvmfs/cvmfs ducc/lib/conversion.go), candidates in its order.
    const ducc = {aarch64: 'arm64 arm64:v8', arm64: 'arm64:v8', armhf: 'arm', armel: 'arm:v6', i386: '386', x86_64: 'amd64', 'x86-64': 'amd64'}
    for (const [alias, dirs] of Object.entries(ducc)) expect(ARCH_ALIASES[alias]?.slice(0, dirs.split(' ').length), alias).toEqual(dirs.split(' '))
    expect([ARCH_ALIASES.i686, ARCH_ALIASES.armv7l, ARCH_ALIASES.armv6l]).toEqual([['386'], ['arm:v7', 'arm'], ['arm:v6']])
  })

  it.each([
    ['x86_64', ['x86_64', 'amd64']],
    ['aarch64', ['aarch64', 'arm64', 'arm64:v8']],
    ['arm64', ['arm64', 'arm64:v8']],
    ['arm64:v8', ['arm64:v8', 'arm64']],
    ['linux/arm/v7', ['arm:v7', 'arm']],
    ['amd64', ['amd64']],
    ['i686', ['i686', '386']],
  ])('looks for %s in %j', (arch, dirs) => {
    expect(archDirCandidates(arch)).toEqual(dirs)
  })
})

describe('syncArchAliases', () => {
  const top = useTempDir('cvmfs-oci-aliases-', 'all')
  const links = async (dir: string) => {
    const out: Record<string, string> = {}
    for (const name of (await readdir(dir)).sort()) {
      if ((await lstat(join(dir, name))).isSymbolicLink()) out[name] = await readlink(join(dir, name))
    }
    return out
  }

  it('links every alias whose candidate is a real directory, relatively, and no other', async () => {
    const dir = join(top(), 'a')
    for (const arch of ['amd64', 'arm64:v8', '386']) await mkdir(join(dir, arch), {recursive: true})
    await syncArchAliases(dir)
    expect(await links(dir)).toEqual({aarch64: 'arm64:v8', arm64: 'arm64:v8', i386: '386', i686: '386', x86_64: 'amd64', 'x86-64': 'amd64'})
  })

  it('prefers a real arm64 for aarch64, never replaces a real directory, and drops aliases whose target went', async () => {
    const dir = join(top(), 'b')
    await mkdir(join(dir, 'arm64'), {recursive: true})
    await mkdir(join(dir, 'amd64'), {recursive: true})
    await symlink('gone', join(dir, 'i386'))
    await syncArchAliases(dir)
    expect(await links(dir)).toEqual({aarch64: 'arm64', x86_64: 'amd64', 'x86-64': 'amd64'})
    expect((await lstat(join(dir, 'arm64'))).isDirectory()).toBe(true)
    await rm(join(dir, 'amd64'), {recursive: true})
    await syncArchAliases(dir)
    expect(await links(dir)).toEqual({aarch64: 'arm64'})
  })

  it('leaves a missing directory missing', async () => {
    await syncArchAliases(join(top(), 'none'))
    await expect(lstat(join(top(), 'none'))).rejects.toThrow()
  })
})

describe('wish lists', () => {
  const base = "version: 1\ncvmfs_repo: 'r.example.org'\ninput:\n  - 'https://quay.io/x/y:1'\n"
  it("read `platform` (DUCC ignores keys it does not know: convert's --multi-arch is its switch)", () => {
    expect(parseWishlist(`${base}platform: all\n`, 'w.yaml').platform).toBe('all')
    expect(parseWishlist(`${base}platform: 'linux/amd64,linux/arm64'\n`, 'w.yaml').platform).toBe('linux/amd64,linux/arm64')
    expect(parseWishlist(base, 'w.yaml').platform).toBeUndefined()
  })

  it('refuses a platform value that is not one, with its line', () => {
    expect(() => parseWishlist(`${base}platform: 'linux'\n`, 'w.yaml')).toThrow(/w\.yaml:5:\d+: .*platform/)
  })
})

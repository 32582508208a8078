import {mkdir, realpath, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {parseResolveArgv, RESOLVE_USAGE} from '../../src/cli/resolve-main.js'
import {CvmfsOciError, NotFoundError, UsageError, UserError} from '../../src/errors.js'
import {expandVariantLink, resolvePublicLink} from '../../src/layout/link.js'
import {relativeLinkTarget, flatRootRel} from '../../src/layout/paths.js'
import {hostArch, resolveImage} from '../../src/layout/resolve.js'
import {DEFAULT_ROOT, searchRoots} from '../../src/layout/roots.js'
import {useTempDir} from '../helpers/temp-dir.js'

const digest = (c: string) => `sha256:${c.repeat(64)}`
const AMD = digest('a')
const ARM = digest('b')
const OTHER = digest('c')
const MANIFEST = digest('d')

const top = useTempDir('cvmfs-oci-resolve-', 'all')

let counter = 0
/** A fresh repository root with flat roots for AMD, ARM and OTHER. */
async function makeRoot(): Promise<string> {
  const root = join(top(), `repo${counter++}`)
  for (const d of [AMD, ARM, OTHER]) await mkdir(join(root, flatRootRel(d), 'etc'), {recursive: true})
  return root
}
async function link(root: string, name: string, target: string): Promise<void> {
  await mkdir(dirname(join(root, name)), {recursive: true})
  await symlink(target, join(root, name))
}
/** A public link as DUCC writes it: relative, to the flat root of `config`. */
async function publish(root: string, name: string, config: string): Promise<void> {
  await link(root, name, relativeLinkTarget(name, config))
}
async function writeJson(root: string, rel: string, value: unknown): Promise<void> {
  await mkdir(dirname(join(root, rel)), {recursive: true})
  await writeFile(join(root, rel), JSON.stringify(value))
}
const flat = (root: string, config: string) => realpath(join(root, flatRootRel(config)))

async function failure(promise: Promise<unknown>): Promise<CvmfsOciError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(CvmfsOciError)
    return error as CvmfsOciError
  }
  throw new Error('expected a failure')
}

describe('expandVariantLink', () => {
  const cases: [target: string, env: NodeJS.ProcessEnv, expanded: string][] = [
    ['../../.flat/aa/aa', {}, '../../.flat/aa/aa'],
    ['../.multiarch/$(CVMFS_ARCH:-amd64)/x', {}, '../.multiarch/amd64/x'],
    ['../.multiarch/$(CVMFS_ARCH:-amd64)/x', {CVMFS_ARCH: 'arm64:v8'}, '../.multiarch/arm64:v8/x'],
    // As in CVMFS: a variable set to the empty string wins over the default.
    ['a/$(CVMFS_ARCH:-amd64)/b', {CVMFS_ARCH: ''}, 'a//b'],
    ['a/$(CVMFS_ARCH)/b', {}, 'a//b'],
    ['a/$(CVMFS_ARCH)/b', {CVMFS_ARCH: 'arm'}, 'a/arm/b'],
    ['$(A)$(B:-x)-$(C:-)', {A: '1'}, '1x-'],
    ['$(A:-a:-b)', {}, 'a:-b'],
    ['keep/$(UNCLOSED', {UNCLOSED: 'no'}, 'keep/$(UNCLOSED'],
    ['$ALONE/$(X)', {X: 'y', ALONE: 'no'}, '$ALONE/y'],
  ]
  it.each(cases)('%s with %j', (target, env, expanded) => {
    expect(expandVariantLink(target, env)).toBe(expanded)
  })
})

describe('resolveImage', () => {
  const env = {}

  it('follows a relative public link to the real flat root', async () => {
    const root = await makeRoot()
    await publish(root, 'registry.hub.docker.com/library/ubuntu:22.04', AMD)
    const got = await resolveImage('ubuntu:22.04', {roots: [root], env})
    expect(got).toEqual({path: await flat(root, AMD), root, name: 'registry.hub.docker.com/library/ubuntu:22.04'})
  })

  it('accepts every spelling of Docker Hub, on disk and in the reference', async () => {
    const root = await makeRoot()
    await publish(root, 'docker.io/library/alpine:3', AMD)
    await publish(root, 'index.docker.io/user/tool:1', ARM)
    for (const ref of ['alpine:3', 'docker.io/alpine:3', 'index.docker.io/library/alpine:3', 'docker://registry.hub.docker.com/library/alpine:3']) {
      expect((await resolveImage(ref, {roots: [root], env})).path).toBe(await flat(root, AMD))
    }
    expect((await resolveImage('user/tool:1', {roots: [root], env})).name).toBe('index.docker.io/user/tool:1')
  })

  it('finds other registries by host and port, and takes a parsed reference', async () => {
    const root = await makeRoot()
    await publish(root, '127.0.0.1:5000/foo/bar:1', ARM)
    await publish(root, 'localhost/x:latest', OTHER)
    expect((await resolveImage('127.0.0.1:5000/foo/bar:1', {roots: [root], env})).path).toBe(await flat(root, ARM))
    expect((await resolveImage({registry: 'localhost', repository: 'x', tag: 'latest'}, {roots: [root], env})).path).toBe(await flat(root, OTHER))
  })

  it('returns a real path when the root is reached through a symlink', async () => {
    const root = await makeRoot()
    await publish(root, 'quay.io/a/b:1', AMD)
    const alias = join(top(), `alias${counter++}`)
    await symlink(root, alias)
    const got = await resolveImage('quay.io/a/b:1', {roots: [alias], env})
    expect(got.path).toBe(await flat(root, AMD))
    expect(got.root).toBe(alias)
  })

  it('follows a registry directory that is itself a link, and accepts a directory in place of a link', async () => {
    const root = await makeRoot()
    await publish(root, 'registry.hub.docker.com/library/a:1', AMD)
    await symlink('registry.hub.docker.com', join(root, 'docker.io'))
    await mkdir(join(root, 'quay.io/copied:1'), {recursive: true})
    expect((await resolveImage('docker.io/library/a:1', {roots: [root], env})).path).toBe(await flat(root, AMD))
    expect((await resolveImage('quay.io/copied:1', {roots: [root], env})).path).toBe(await realpath(join(root, 'quay.io/copied:1')))
  })

  it('maps absolute /cvmfs/<repo>/ links of old repositories onto a copy', async () => {
    const root = await makeRoot()
    const hex = AMD.slice('sha256:'.length)
    await link(root, 'registry.hub.docker.com/library/centos:centos7', `/cvmfs/no-such-repo.cern.ch/.flat/${hex.slice(0, 2)}/${hex}`)
    // A chain: absolute link to another public link, itself absolute.
    await link(root, 'registry.hub.docker.com/library/centos:7', '/cvmfs/no-such-repo.cern.ch/registry.hub.docker.com/library/centos:centos7')
    expect((await resolveImage('centos:centos7', {roots: [root], env})).path).toBe(await flat(root, AMD))
    expect((await resolveImage('centos:7', {roots: [root], env})).path).toBe(await flat(root, AMD))
  })

  describe('multi-arch', () => {
    const name = 'registry.hub.docker.com/library/multi:1'
    const variant = '../../.multiarch/$(CVMFS_ARCH:-amd64)/registry.hub.docker.com/library/multi:1'
    let root: string
    beforeAll(async () => {
      root = await makeRoot()
      await link(root, name, variant)
      await publish(root, `.multiarch/amd64/${name}`, AMD)
      await publish(root, `.multiarch/arm64:v8/${name}`, ARM)
    })

    it("expands the variant link with this node's architecture without CVMFS_ARCH (as a CVMFS client does), not the link's default", async () => {
      const r = await makeRoot()
      const other = '../../.multiarch/$(CVMFS_ARCH:-s390x)/registry.hub.docker.com/library/multi:1'
      await link(r, name, other)
      await publish(r, `.multiarch/amd64/${name}`, AMD)
      await publish(r, `.multiarch/arm64:v8/${name}`, ARM)
      await publish(r, `.multiarch/s390x/${name}`, OTHER)
      expect(['amd64', 'arm64']).toContain(hostArch())
      const got = await resolveImage('multi:1', {roots: [r], env: {}})
      expect(got).toEqual({path: await flat(r, hostArch() === 'amd64' ? AMD : ARM), root: r, name})
    })

    it('reads CVMFS_ARCH in the uname -m spelling CVMFS 2.12 clients set (x86_64, aarch64): through alias links, or the OCI directory', async () => {
      expect((await resolveImage('multi:1', {roots: [root], env: {CVMFS_ARCH: 'x86_64'}})).path).toBe(await flat(root, AMD))
      expect((await resolveImage('multi:1', {roots: [root], env: {CVMFS_ARCH: 'aarch64'}})).path).toBe(await flat(root, ARM))
      const r = await makeRoot()
      await link(r, name, variant)
      await publish(r, `.multiarch/arm64:v8/${name}`, ARM)
      await link(r, '.multiarch/aarch64', 'arm64:v8')
      expect(await resolveImage('multi:1', {roots: [r], env: {CVMFS_ARCH: 'aarch64'}})).toEqual({path: await flat(r, ARM), root: r, name})
    })

    it('expands the variant link with CVMFS_ARCH', async () => {
      const got = await resolveImage('multi:1', {roots: [root], env: {CVMFS_ARCH: 'arm64:v8'}})
      expect(got).toEqual({path: await flat(root, ARM), root, name})
    })

    it('expands the variant link with an explicit arch, which wins over CVMFS_ARCH', async () => {
      expect((await resolveImage('multi:1', {roots: [root], env: {CVMFS_ARCH: 'amd64'}, arch: 'arm64:v8'})).path).toBe(await flat(root, ARM))
      expect((await resolveImage('multi:1', {roots: [root], env: {}, arch: 'linux/arm64/v8'})).path).toBe(await flat(root, ARM))
    })

    it('falls back to .multiarch/<arch>/ when there is no public link', async () => {
      const r = await makeRoot()
      await publish(r, `.multiarch/arm64:v8/quay.io/m:1`, ARM)
      await publish(r, `.multiarch/arm/quay.io/m:1`, OTHER)
      expect(await resolveImage('quay.io/m:1', {roots: [r], env: {}, arch: 'arm64:v8'})).toEqual({path: await flat(r, ARM), root: r, name: '.multiarch/arm64:v8/quay.io/m:1'})
      // A bare arch tries OCI's default variant; a variant arch tries the bare name.
      expect((await resolveImage('quay.io/m:1', {roots: [r], env: {}, arch: 'arm64'})).path).toBe(await flat(r, ARM))
      expect((await resolveImage('quay.io/m:1', {roots: [r], env: {CVMFS_ARCH: 'arm:v7'}})).path).toBe(await flat(r, OTHER))
      await expect(resolveImage('quay.io/m:1', {roots: [r], env: {}, arch: 's390x'})).rejects.toMatchObject({code: 'E_IMAGE_NOT_FOUND'})
    })

    it("finds a digest among the platforms' records: the index digest means this node's platform, an instance's its own", async () => {
      const r = await makeRoot()
      await link(r, name, variant)
      const index = digest('e')
      const manifests = {amd64: digest('1'), 'arm64:v8': digest('2')}
      for (const [arch, config] of [['amd64', AMD], ['arm64:v8', ARM]] as const) {
        await publish(r, `.multiarch/${arch}/${name}`, config)
        await writeJson(r, `.metadata/.multiarch/${arch}/${name}/cvmfs-oci.json`, {name, arch, manifestDigest: manifests[arch], configDigest: config, indexDigest: index})
      }
      expect((await resolveImage(`multi@${index}`, {roots: [r], env: {CVMFS_ARCH: 'arm64'}})).path).toBe(await flat(r, ARM))
      expect((await resolveImage(`multi@${index}`, {roots: [r], env: {CVMFS_ARCH: 'amd64'}})).path).toBe(await flat(r, AMD))
      expect(await resolveImage(`multi@${manifests.amd64}`, {roots: [r], env: {CVMFS_ARCH: 'arm64'}})).toEqual({path: await flat(r, AMD), root: r, name: `.multiarch/amd64/${name}`})
      expect((await resolveImage(`multi@${ARM}`, {roots: [r], env: {}})).path).toBe(await flat(r, ARM))
      await expect(resolveImage(`multi@${OTHER}`, {roots: [r], env: {}})).rejects.toMatchObject({code: 'E_IMAGE_NOT_FOUND'})
    })

    it('reports a variant link whose architecture is absent as dangling, naming link and target', async () => {
      const error = await failure(resolveImage('multi:1', {roots: [root], env: {CVMFS_ARCH: 'riscv64'}}))
      expect(error).toBeInstanceOf(NotFoundError)
      expect(error.code).toBe('E_DANGLING_LINK')
      expect(error.message).toContain(join(await realpath(root), name))
      expect(error.message).toContain(variant)
      expect(error.message).toContain('.multiarch/riscv64/')
    })
  })

  describe('digest references', () => {
    let root: string
    beforeAll(async () => {
      root = await makeRoot()
      await publish(root, `quay.io/org/img:${MANIFEST}`, OTHER)
      await publish(root, 'quay.io/org/img:recorded', AMD)
      await writeJson(root, '.metadata/quay.io/org/img:recorded/cvmfs-oci.json', {manifestDigest: digest('e'), configDigest: AMD})
      await publish(root, 'quay.io/org/img:ducc', ARM)
      await writeJson(root, '.metadata/quay.io/org/img:ducc/manifest.json', {SchemaVersion: 2, Config: {Digest: ARM}, Layers: []})
      await publish(root, 'quay.io/org/img-other:x', AMD)
      await writeJson(root, '.metadata/quay.io/org/img-other:x/cvmfs-oci.json', {manifestDigest: digest('f'), configDigest: AMD})
    })

    it('uses the <repo>:sha256:<hex> link', async () => {
      expect(await resolveImage(`quay.io/org/img@${MANIFEST}`, {roots: [root], env})).toEqual({path: await flat(root, OTHER), root, name: `quay.io/org/img:${MANIFEST}`})
    })

    it('matches the manifest digest, then the config digest, of our records', async () => {
      expect((await resolveImage(`quay.io/org/img@${digest('e')}`, {roots: [root], env})).name).toBe('quay.io/org/img:recorded')
      expect((await resolveImage(`quay.io/org/img@${AMD}`, {roots: [root], env})).name).toBe('quay.io/org/img:recorded')
    })

    it("matches the config digest in DUCC's manifest when there is no record", async () => {
      expect((await resolveImage(`quay.io/org/img@${ARM}`, {roots: [root], env})).name).toBe('quay.io/org/img:ducc')
    })

    it('lets the digest decide when a tag is given too', async () => {
      expect((await resolveImage(`quay.io/org/img:whatever@${digest('e')}`, {roots: [root], env})).path).toBe(await flat(root, AMD))
      const error = await failure(resolveImage(`quay.io/org/img:recorded@${digest('9')}`, {roots: [root], env}))
      expect(error.code).toBe('E_IMAGE_NOT_FOUND')
      expect(error.message).toContain(`none of them is recorded with manifest or config digest ${digest('9')}`)
    })

    it('does not take another repository of the same directory', async () => {
      const error = await failure(resolveImage(`quay.io/org/img@${digest('f')}`, {roots: [root], env}))
      expect(error.code).toBe('E_IMAGE_NOT_FOUND')
      expect(error.message).toContain('ducc, recorded')
      expect(error.message).not.toContain('img-other')
    })
  })

  describe('image IDs (podman: a full ID, or a unique prefix of one, names a flat root)', () => {
    // Three IDs, two of which share their first 6 hex digits.
    const ID1 = `sha256:2f1d018c7e34${'1'.repeat(52)}`
    const ID2 = `sha256:2f1d01aa${'2'.repeat(56)}`
    const ID3 = `sha256:9c${'3'.repeat(62)}`
    const hex = (d: string) => d.slice('sha256:'.length)
    let root: string
    beforeAll(async () => {
      root = await makeRoot()
      for (const d of [ID1, ID2, ID3]) await mkdir(join(root, flatRootRel(d), 'etc'), {recursive: true})
      // The bug: the full ID of ID1, read as docker.io/library/<hex>:latest, named another image.
      await publish(root, `registry.hub.docker.com/library/${hex(ID1)}:latest`, ID3)
      // A name that is also a unique prefix of ID1: podman takes the name first.
      await publish(root, 'registry.hub.docker.com/library/2f1d018c:latest', ID3)
    })

    it('resolves a full ID, bare or with sha256:, to its flat root and never to a name', async () => {
      for (const id of [hex(ID1), ID1]) {
        expect(await resolveImage(id, {roots: [root], env})).toEqual({path: await flat(root, ID1), root, name: flatRootRel(ID1)})
      }
    })

    it('resolves a unique prefix, 2 to 63 hex digits, to its flat root', async () => {
      for (const prefix of ['2f1d018c7e34', '2f1d018', hex(ID1).slice(0, 63), '2f1d01a', '9c', '9c3']) {
        const want = prefix.startsWith('2f1d018') ? ID1 : prefix.startsWith('2f1d01a') ? ID2 : ID3
        expect((await resolveImage(prefix, {roots: [root], env})).path, prefix).toBe(await flat(root, want))
      }
    })

    it('takes a name before an ID prefix, as podman does', async () => {
      expect((await resolveImage('2f1d018c', {roots: [root], env})).path).toBe(await flat(root, ID3))
    })

    it('refuses an ambiguous prefix, naming the IDs it matches (exit 3)', async () => {
      const error = await failure(resolveImage('2f1d01', {roots: [root], env}))
      expect(error).toBeInstanceOf(NotFoundError)
      expect(error.code).toBe('E_AMBIGUOUS_ID')
      expect(error.exitCode).toBe(3)
      expect(error.message).toContain('ambiguous')
      expect(error.message).toContain(hex(ID1))
      expect(error.message).toContain(hex(ID2))
    })

    it('refuses a prefix matching different IDs in two roots, and takes the same ID from the first root', async () => {
      const other = await makeRoot()
      await mkdir(join(other, flatRootRel(`sha256:9c${'4'.repeat(62)}`)), {recursive: true})
      expect((await failure(resolveImage('9c', {roots: [root, other], env}))).code).toBe('E_AMBIGUOUS_ID')
      await mkdir(join(other, flatRootRel(ID1)), {recursive: true})
      expect(await resolveImage(hex(ID1).slice(0, 12), {roots: [join(top(), 'missing'), root, other], env})).toMatchObject({root, path: await flat(root, ID1)})
      expect(await resolveImage(hex(ID1).slice(0, 12), {roots: [other, root], env})).toMatchObject({root: other, path: await flat(other, ID1)})
    })

    it('says no image has that ID (exit 3)', async () => {
      for (const id of [`sha256:${'5'.repeat(64)}`, '5'.repeat(64), '55555', '2f1d0199']) {
        const error = await failure(resolveImage(id, {roots: [root], env}))
        expect(error.code, id).toBe('E_IMAGE_NOT_FOUND')
        expect(error.exitCode).toBe(3)
        expect(error.message).toMatch(/no image ID (is|starts with) /)
      }
    })

    it('rejects sha256: with fewer than 64 hex digits, as podman does (exit 2)', async () => {
      const error = await failure(resolveImage('sha256:2f1d018c7e34', {roots: [root], env}))
      expect(error).toBeInstanceOf(UsageError)
      expect(error.message).toContain('64')
    })

    it('looks a 1-digit string up as a name only', async () => {
      const error = await failure(resolveImage('9', {roots: [root], env}))
      expect(error.code).toBe('E_IMAGE_NOT_FOUND')
      expect(error.message).toContain('at least 2')
    })
  })

  describe('failures', () => {
    it('names the reference, every root (missing ones marked) and the existing tags', async () => {
      const a = await makeRoot()
      const b = await makeRoot()
      const missing = join(top(), 'does-not-exist')
      await publish(a, 'registry.hub.docker.com/library/ubuntu:20.04', AMD)
      await publish(b, 'registry.hub.docker.com/library/ubuntu:24.04', ARM)
      await publish(b, `registry.hub.docker.com/library/ubuntu:${MANIFEST}`, ARM)
      await publish(b, 'registry.hub.docker.com/library/ubuntu-extra:22.04', ARM)
      const error = await failure(resolveImage('ubuntu:22.04', {roots: [missing, a, b], env}))
      expect(error).toBeInstanceOf(NotFoundError)
      expect(error.code).toBe('E_IMAGE_NOT_FOUND')
      expect(error.exitCode).toBe(3)
      expect(error.message).toContain('"ubuntu:22.04" (docker.io/library/ubuntu:22.04)')
      expect(error.message).toContain(`${missing} (missing)`)
      expect(error.message).toMatch(new RegExp(`searched: .*${a}, ${b}$`, 'm'))
      expect(error.message).toContain(`${join(a, 'registry.hub.docker.com/library/ubuntu')}: 20.04`)
      expect(error.message).toContain(`${join(b, 'registry.hub.docker.com/library/ubuntu')}: 24.04, @${MANIFEST}`)
      expect(error.message).not.toContain('ubuntu-extra')
      expect(error.hint).toMatch(/existing tags/)
    })

    it('says so when no tag of the repository exists, or no root was given', async () => {
      const root = await makeRoot()
      const error = await failure(resolveImage('quay.io/nothing/here', {roots: [root], env}))
      expect(error.message).toContain('no tag of quay.io/nothing/here exists')
      expect(error.hint).toMatch(/--root/)
      expect((await failure(resolveImage('x', {roots: [], env}))).message).toContain('no repository roots')
    })

    it('rejects a malformed reference before touching the disk', async () => {
      await expect(resolveImage('Bad:Ref', {roots: ['/nonexistent'], env})).rejects.toBeInstanceOf(UsageError)
    })

    it('reports a dangling public link, naming link and target', async () => {
      const root = await makeRoot()
      await link(root, 'quay.io/gone:1', '../.flat/ff/ffff')
      const error = await failure(resolveImage('quay.io/gone:1', {roots: [root], env}))
      expect(error.code).toBe('E_DANGLING_LINK')
      expect(error.exitCode).toBe(3)
      expect(error.message).toContain(join(await realpath(root), 'quay.io/gone:1'))
      expect(error.message).toContain('../.flat/ff/ffff')
    })

    it('prefers a later root that has the image over a dangling link in an earlier one', async () => {
      const a = await makeRoot()
      const b = await makeRoot()
      await link(a, 'quay.io/gone:1', '../.flat/ff/ffff')
      await publish(b, 'quay.io/gone:1', ARM)
      expect(await resolveImage('quay.io/gone:1', {roots: [join(top(), 'missing'), a, b], env})).toMatchObject({root: b, path: await flat(b, ARM)})
    })

    it('refuses a link to a file', async () => {
      const root = await makeRoot()
      await writeFile(join(root, 'file'), 'not a rootfs')
      await link(root, 'quay.io/file:1', '../file')
      const error = await failure(resolveImage('quay.io/file:1', {roots: [root], env}))
      expect(error.code).toBe('E_NOT_A_DIRECTORY')
      expect(error.message).toContain(join(await realpath(root), 'file'))
    })

    it('stops at symlink loops', async () => {
      const root = await makeRoot()
      await link(root, 'quay.io/loop:a', 'loop:b')
      await link(root, 'quay.io/loop:b', 'loop:a')
      await link(root, 'quay.io/loop:self', 'loop:self')
      // A loop through a variant link, which the kernel alone would report as ENOENT.
      await link(root, 'quay.io/loop:var', '$(LOOP:-loop:var)')
      for (const tag of ['a', 'self', 'var']) {
        const error = await failure(resolveImage(`quay.io/loop:${tag}`, {roots: [root], env}))
        expect(error.code).toBe('E_LINK_LOOP')
        expect(error.message).toMatch(/too many levels of symbolic links/)
      }
    })

    it('treats a path component that is a file as missing', async () => {
      const root = await makeRoot()
      await writeFile(join(root, 'quay.io'), '')
      expect(await resolvePublicLink(await realpath(root), 'quay.io/x:1', {env})).toBeUndefined()
    })
  })
})

describe('searchRoots', () => {
  const noConfig = () => join(top(), 'no-config.json')

  it('orders flags, config, CVMFS_OCI_ROOTS, then the default, without duplicates', async () => {
    const config = join(top(), 'config.json')
    await writeFile(config, JSON.stringify({roots: ['/from/config', '/flag/a']}))
    const roots = searchRoots({flagRoots: ['/flag/a', '/flag/b/'], configPath: config, env: {CVMFS_OCI_ROOTS: ':/env/a::/from/config:/env/b:'}})
    expect(roots).toEqual(['/flag/a', '/flag/b', '/from/config', '/env/a', '/env/b', DEFAULT_ROOT])
  })

  it('reads the config named by CVMFS_OCI_CONFIG; a missing file is fine', async () => {
    const config = join(top(), 'env-config.json')
    await writeFile(config, JSON.stringify({$schema: 'x', roots: ['/c']}))
    expect(searchRoots({env: {CVMFS_OCI_CONFIG: config}})).toEqual(['/c', DEFAULT_ROOT])
    expect(searchRoots({env: {CVMFS_OCI_CONFIG: noConfig()}})).toEqual([DEFAULT_ROOT])
    expect(searchRoots({configPath: noConfig(), env: {}, flagRoots: ['rel']})).toEqual([join(process.cwd(), 'rel'), DEFAULT_ROOT])
  })

  it('rejects a config that is not JSON, naming the file', async () => {
    const config = join(top(), 'broken.json')
    await writeFile(config, '{"roots": [')
    expect(() => searchRoots({configPath: config, env: {}})).toThrow(UserError)
    expect(() => searchRoots({configPath: config, env: {}})).toThrow(expect.objectContaining({code: 'E_BAD_CONFIG', message: expect.stringContaining(config)}))
  })

  it('rejects a config that breaks the schema, naming each JSON pointer', async () => {
    const config = join(top(), 'invalid.json')
    await writeFile(config, JSON.stringify({roots: ['/ok', 'relative', 7], extra: true}))
    let error: UserError | undefined
    try {
      searchRoots({configPath: config, env: {}})
    } catch (e) {
      error = e as UserError
    }
    expect(error?.code).toBe('E_BAD_CONFIG')
    expect(error?.message).toContain(config)
    expect(error?.message).toContain('/roots/1')
    expect(error?.message).toContain('/roots/2')
    expect(error?.message).toMatch(/\/: must NOT have additional properties "extra"/)
  })

  it('rejects a config that cannot be read', async () => {
    const dir = join(top(), 'config-dir')
    await mkdir(dir, {recursive: true})
    expect(() => searchRoots({configPath: dir, env: {}})).toThrow(expect.objectContaining({code: 'E_BAD_CONFIG'}))
  })
})

describe("resolve's command line (parseResolveArgv, read as oclif reads the Resolve command's flags)", () => {
  it('takes --root (repeated, spaced or with "="), --config and --overlay in any order', () => {
    expect(parseResolveArgv(['--root', '/a', 'alpine:3.20', '--root=/b', '--config=/etc/c.json'])).toEqual({
      image: 'alpine:3.20',
      roots: ['/a', '/b'],
      config: '/etc/c.json',
      overlay: 'auto',
    })
    expect(parseResolveArgv(['alpine:3.20'])).toEqual({image: 'alpine:3.20', roots: [], config: undefined, overlay: 'auto'})
  })

  it('reads --overlay as podman spells a boolean: bare or =true always, =false never (also -O)', () => {
    expect(parseResolveArgv(['--overlay', 'x']).overlay).toBe('always')
    expect(parseResolveArgv(['--overlay=true', 'x']).overlay).toBe('always')
    expect(parseResolveArgv(['-O', 'x']).overlay).toBe('always')
    expect(parseResolveArgv(['x', '--overlay=false']).overlay).toBe('never')
  })

  it('takes an IMAGE that starts with "-" only after --, and a value that starts with "-" only after "="', () => {
    expect(parseResolveArgv(['--root', '/a', '--', '-x']).image).toBe('-x')
    expect(parseResolveArgv(['--root=-odd', 'x']).roots).toEqual(['-odd'])
  })

  it.each([
    [['--bogus', 'x'], /^unknown option "--bogus"/],
    [['x', '--root'], /^--root needs a value\n/],
    [['x', '--root='], /^--root needs a value\n/],
    [['--root', '--config', 'c', 'x'], /^--root needs a value, not the option "--config" \(write --root=--config/],
    [['--config', 'a', '--config', 'b', 'x'], /^--config is given twice\n/],
    [['--overlay=yes', 'x'], /^--overlay takes true or false, not "yes"\n/],
    [[], /^resolve takes exactly one IMAGE\n/],
    [['a', 'b'], /^resolve takes exactly one IMAGE\n/],
  ])('refuses %j with a usage error (exit 2) that shows the usage', (argv, message) => {
    const parse = () => parseResolveArgv(argv)
    expect(parse).toThrow(UsageError)
    expect(parse).toThrow(expect.objectContaining({exitCode: 2, message: expect.stringMatching(message)}))
    expect(parse).toThrow(`\n${RESOLVE_USAGE}`)
  })
})

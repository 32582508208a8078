/**
 * `publish --platform all` of a two-platform index (amd64 with a runnable busybox, arm64
 * with files only) into a directory repository, in DUCC's multi-arch layout: each
 * platform's flat root equals umoci's unpack of that platform's image; the public name is
 * DUCC's variant link through `.multiarch/$(CVMFS_ARCH:-amd64)/`; resolve, list, podman
 * (by `--rootfs` and by name from the store, on a read-only view), re-publish, a wish
 * list asking for every platform, a single-platform publish over it, rm and gc.
 * test/e2e/multiarch-cvmfs.test.ts reads the same layout through real CVMFS clients.
 */
import {lstat, readdir, readFile, readlink, realpath, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli, cliOk} from '../helpers/cli.js'
import {AMD64_IMAGE, ARM64_IMAGE} from '../helpers/multiarch-images.js'
import {writeOciIndexLayout, writeOciLayout, type WrittenImage} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'

const AMD64 = AMD64_IMAGE
const ARM64 = ARM64_IMAGE

const work = useTempDir('cvmfs-oci-multiarch-', 'all')
let repo: string
let registry: string
let ref: string
let name: string
let amd: WrittenImage
let arm: WrittenImage
let podman: IsolatedPodman
let readonly: ReadonlyMount | undefined

const flatOf = (image: WrittenImage) => join(repo, '.flat', image.configDigest.slice(7, 9), image.configDigest.slice(7))
const publishJson = async (...args: string[]) => JSON.parse(await cliOk(['publish', '--root', repo, '--tls-verify=false', '--json', ...args])).images[0]
const resolveWith = async (env: Record<string, string>, root = repo) => (await cliOk(['resolve', '--overlay=false', '--root', root, ref], {env})).trim()

beforeAll(async () => {
  requireTools('skopeo', 'umoci', 'podman', 'runc', 'busybox', 'mount')
  repo = join(work(), 'repo')
  registry = registryAddress()
  const layout = join(work(), 'layout')
  ;[amd, arm] = (await writeOciIndexLayout(layout, 'multi', [AMD64, ARM64])).images as [WrittenImage, WrittenImage]
  ref = await pushLayout(layout, 'multi', registry, 'multiarch/box:1')
  name = ref
  podman = await isolatedPodman()
}, 300_000)
afterAll(async () => {
  await podman?.cleanup()
  await readonly?.unmount()
})

describe('publish --platform all', () => {
  it('publishes every platform of the index in one run, each platform as umoci unpacks it', async () => {
    const out = await publishJson('--platform', 'all', ref)
    expect(out.status).toBe('published')
    expect(out.platforms.map((p: {arch: string; configDigest: string; status: string}) => [p.arch, p.configDigest, p.status])).toEqual([
      ['amd64', amd.configDigest, 'published'],
      ['arm64:v8', arm.configDigest, 'published'],
    ])
    // The index's own instances are the images umoci unpacks from single-platform layouts.
    for (const [spec, image, tag] of [[AMD64, amd, 'amd'], [ARM64, arm, 'arm']] as const) {
      const single = join(work(), `layout-${tag}`)
      const [written] = await writeOciLayout(single, [{tag, image: spec}])
      expect(written!.configDigest).toBe(image.configDigest)
      const platform = out.platforms.find((p: {configDigest: string}) => p.configDigest === image.configDigest)
      const added = new Set<string>(platform.added)
      const ours = await snapshotTree(flatOf(image), {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
      const theirs = await snapshotTree(await umociUnpack(single, tag, join(work(), `bundle-${tag}`)))
      for (const tree of [ours, theirs]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs
      expect(diffTrees(theirs, ours)).toEqual([])
    }
    expect(await readFile(join(flatOf(arm), 'data/arch'), 'utf8')).toBe('arm64\n')
  })

  it("writes DUCC's layout: the variant public link, .multiarch links and aliases, per-platform metadata only", async () => {
    expect(await readlink(join(repo, name))).toBe(`../../.multiarch/$(CVMFS_ARCH:-amd64)/${name}`)
    const hex = (image: WrittenImage) => image.configDigest.slice(7)
    expect(await readlink(join(repo, '.multiarch/amd64', name))).toBe(`../../../../.flat/${hex(amd).slice(0, 2)}/${hex(amd)}`)
    expect(await readlink(join(repo, '.multiarch/arm64:v8', name))).toBe(`../../../../.flat/${hex(arm).slice(0, 2)}/${hex(arm)}`)
    // The names CVMFS clients give CVMFS_ARCH (uname -m) and the bare OCI name lead to the directories.
    expect(await readlink(join(repo, '.multiarch/x86_64'))).toBe('amd64')
    expect(await readlink(join(repo, '.multiarch/aarch64'))).toBe('arm64:v8')
    expect(await readlink(join(repo, '.multiarch/arm64'))).toBe('arm64:v8')
    for (const [arch, image] of [['amd64', amd], ['arm64:v8', arm]] as const) {
      const dir = join(repo, '.metadata/.multiarch', arch, name)
      expect(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')).Config.Digest).toBe(image.configDigest)
      expect(JSON.parse(await readFile(join(dir, 'cvmfs-oci.json'), 'utf8'))).toMatchObject({name, arch, configDigest: image.configDigest, manifestDigest: image.manifestDigest})
    }
    await expect(lstat(join(repo, '.metadata', name))).rejects.toThrow()
  })

  it('resolves the platform of CVMFS_ARCH (OCI or uname -m spelling), else of this node', async () => {
    const amdRoot = await realpath(flatOf(amd))
    const armRoot = await realpath(flatOf(arm))
    expect(await resolveWith({CVMFS_ARCH: 'amd64'})).toBe(amdRoot)
    expect(await resolveWith({CVMFS_ARCH: 'x86_64'})).toBe(amdRoot)
    expect(await resolveWith({CVMFS_ARCH: 'arm64'})).toBe(armRoot)
    expect(await resolveWith({CVMFS_ARCH: 'aarch64'})).toBe(armRoot)
    expect(process.arch).toBe('x64')
    expect(await resolveWith({})).toBe(amdRoot)
    const none = await cli(['resolve', '--root', repo, ref], {env: {CVMFS_ARCH: 's390x'}})
    expect(none.exitCode).toBe(3)
    expect(none.stderr).toContain('.multiarch/s390x/')
  })

  it('podman runs the amd64 root by --rootfs, and by name from the store, which lists the amd64 image only', async () => {
    readonly = await readonlyBindMount(repo)
    const rootfs = (await cliOk(['resolve', '--root', readonly.path, ref], {env: {}})).trim()
    expect(rootfs).toBe(join(readonly.path, '.flat', amd.configDigest.slice(7, 9), amd.configDigest.slice(7)))
    const run = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /data/arch'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('amd64\n')

    const store = ['--storage-opt', `additionalimagestore=${join(readonly.path, 'podmanStore')}`]
    const images = await podman.run([...store, 'images', '--format', 'json'])
    expect(images.exitCode, images.stderr).toBe(0)
    const listed = JSON.parse(images.stdout) as {Id: string; Names?: string[]}[]
    expect(listed.map((i) => [i.Id, i.Names])).toEqual([[amd.configDigest.slice(7), [name]]])
    const byName = await podman.run([...store, 'run', '--rm', name, 'cat', '/data/arch'])
    expect(byName.exitCode, byName.stderr).toBe(0)
    expect(byName.stdout).toBe('amd64\n')
    await readonly.unmount()
    readonly = undefined
  })

  it('list shows the platforms of the name', async () => {
    const listing = JSON.parse(await cliOk(['list', '--root', repo, '--json']))
    const [image] = listing.roots[0].images
    expect(image).toMatchObject({name, reference: ref, configDigest: amd.configDigest, platform: 'linux/amd64'})
    expect(image.platforms.map((p: {arch: string; platform: string; configDigest: string}) => [p.arch, p.platform, p.configDigest])).toEqual([
      ['amd64', 'linux/amd64', amd.configDigest],
      ['arm64:v8', 'linux/arm64/v8', arm.configDigest],
    ])
    const table = await cliOk(['list', '--root', repo])
    expect(table).toMatch(/PLATFORM/)
    expect(table).toMatch(new RegExp(`${ref.replace(/[.]/g, '\\.')}\\s+${arm.configDigest.slice(7, 19)}.*linux/arm64/v8`))
  })

  it('changes nothing when published again, by the command or by a wish list asking for every platform', async () => {
    const before = await snapshotTree(repo)
    expect((await publishJson('--platform', 'all', ref)).status).toBe('unchanged')
    const wishlist = join(work(), 'wishlist.yaml')
    await writeFile(wishlist, `version: 1\ncvmfs_repo: 'ignored.example.org'\nplatform: all\ninput:\n  - 'http://${ref}'\n`)
    const sync = JSON.parse(await cliOk(['sync', '--root', repo, '--json', wishlist]))
    expect(sync.images.map((i: {status: string; platforms: unknown[]}) => [i.status, i.platforms.length])).toEqual([['unchanged', 2]])
    expect(diffTrees(before, await snapshotTree(repo))).toEqual([])
    // A list of platforms is the same request.
    expect((await publishJson('--platform', 'linux/amd64,linux/arm64', ref)).status).toBe('unchanged')
  })

  it('gc keeps the arm64 root, which only the .multiarch link reaches', async () => {
    const gc = JSON.parse(await cliOk(['gc', '--root', repo, '--grace-period', '0', '--json']))
    expect(gc.deleted).toEqual([])
    expect((await lstat(flatOf(arm))).isDirectory()).toBe(true)
  })

  it('a single-platform publish makes the name a plain link again; --platform all brings every platform back', async () => {
    const single = await publishJson('--platform', 'linux/amd64', ref)
    expect(single.status).toBe('linked')
    expect(single.platforms).toBeUndefined()
    expect(await readlink(join(repo, name))).toBe(`../../.flat/${amd.configDigest.slice(7, 9)}/${amd.configDigest.slice(7)}`)
    for (const gone of [join('.multiarch/amd64', name), join('.multiarch/arm64:v8', name), join('.metadata/.multiarch/amd64', name)]) {
      await expect(lstat(join(repo, gone))).rejects.toThrow()
    }
    expect(await readdir(join(repo, '.multiarch'))).toEqual([])
    expect((await lstat(join(repo, 'podmanStore/overlay-images/images.json'))).isFile()).toBe(true)
    expect(JSON.parse(await readFile(join(repo, '.metadata', name, 'cvmfs-oci.json'), 'utf8')).configDigest).toBe(amd.configDigest)

    const again = await publishJson('--platform', 'all', ref)
    expect(again.status).toBe('linked')
    expect(await readlink(join(repo, name))).toBe(`../../.multiarch/$(CVMFS_ARCH:-amd64)/${name}`)
    await expect(lstat(join(repo, '.metadata', name))).rejects.toThrow()
  })

  it('rm removes every platform of the name; gc then deletes both roots', async () => {
    expect((await cli(['rm', '--root', repo, ref])).exitCode).toBe(0)
    for (const gone of [name, join('.multiarch/amd64', name), join('.multiarch/arm64:v8', name), join('.metadata/.multiarch/arm64:v8', name)]) {
      await expect(lstat(join(repo, gone))).rejects.toThrow()
    }
    expect(await readdir(join(repo, '.multiarch'))).toEqual([])
    expect(JSON.parse(await readFile(join(repo, 'podmanStore/overlay-images/images.json'), 'utf8'))).toEqual([])
    const gc = JSON.parse(await cliOk(['gc', '--root', repo, '--grace-period', '0', '--json']))
    expect(gc.deleted.filter((i: {kind: string}) => i.kind === 'flat').map((i: {path: string}) => i.path).sort()).toEqual(
      [flatOf(amd), flatOf(arm)].map((p) => p.slice(repo.length + 1)).sort(),
    )
  })

  it('publishes a single-platform image with --platform all under a plain link', async () => {
    const layout = join(work(), 'layout-plain')
    const [image] = await writeOciLayout(layout, [{tag: 'p', image: AMD64}])
    const plain = await pushLayout(layout, 'p', registry, 'multiarch/plain:1')
    const out = await publishJson('--platform', 'all', plain)
    expect(out).toMatchObject({status: 'published', configDigest: image!.configDigest})
    expect(out.platforms).toBeUndefined()
    expect(await readlink(join(repo, plain))).toBe(`../../.flat/${image!.configDigest.slice(7, 9)}/${image!.configDigest.slice(7)}`)
  })
})

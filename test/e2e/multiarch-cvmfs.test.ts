/**
 * A multi-platform publish read back the way worker nodes read it: through real CVMFS
 * 2.12 client mounts (the kit, ../shared/testbed), which expand the variant public link
 * themselves. A 2.12 client sets CVMFS_ARCH to `uname -m` and lets nothing override it
 * (a `CVMFS_ARCH=` line in its configuration is read, and ignored for variant links): so
 * the default client here (x86_64) and a second one started under the 32-bit personality
 * (`setarch i686`, i686) are the two values this machine can give, and the alias links
 * publish writes (x86_64 -> amd64, i686 -> 386) are what make them land.
 */
import {readFile, readlink} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli, cliOk} from '../helpers/cli.js'
import {AMD64_IMAGE, ARM64_IMAGE, I386_IMAGE} from '../helpers/multiarch-images.js'
import {writeOciIndexLayout, type WrittenImage} from '../helpers/oci-layout.js'
import {isolatedPodman, type IsolatedPodman} from '../helpers/podman.js'
import {mountExtraClient, publishedRevision, testRepository, type ExtraClient} from '../helpers/cvmfs.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const repo = testRepository('multiarch')

describe(`a multi-platform name through real CVMFS clients of ${repo.name}`, () => {
  const repoName = repo.name
  const work = useTempDir('cvmfs-oci-multiarch-cvmfs-', 'all')
  let ref: string
  let images: WrittenImage[]
  let client: string
  let i686: ExtraClient | undefined
  let podman: IsolatedPodman
  const env = () => repo.env
  const flatIn = (root: string, image: WrittenImage) => join(root, '.flat', image.configDigest.slice(7, 9), image.configDigest.slice(7))

  beforeAll(async () => {
    requireTools('skopeo', 'podman', 'runc', 'busybox', 'setarch')
    images = (await writeOciIndexLayout(join(work(), 'layout'), 'multi', [AMD64_IMAGE, ARM64_IMAGE, I386_IMAGE])).images
    ref = await pushLayout(join(work(), 'layout'), 'multi', registryAddress(), 'multiarch-cvmfs/box:1')
    await repo.start()
    podman = await isolatedPodman()
  }, 300_000)
  afterAll(async () => {
    await podman?.cleanup()
    await i686?.unmount()
    await repo.cleanup()
  }, 120_000)

  it('publishes every platform in one transaction, and an unchanged index in none', async () => {
    const before = await publishedRevision(repoName)
    const out = JSON.parse(await cliOk(['publish', '--repo', repoName, '--platform', 'all', '--tls-verify=false', '--json', ref], {env: env()}))
    expect(out.images[0].platforms.map((p: {arch: string}) => p.arch)).toEqual(['amd64', 'arm64:v8', '386'])
    expect(await publishedRevision(repoName)).toBe(before + 1)
    // The stratum-0's own mount shows the link as written.
    expect(await readlink(join('/cvmfs', repoName, ref))).toBe(`../../.multiarch/$(CVMFS_ARCH:-amd64)/${ref}`)
    const again = await cli(['publish', '--repo', repoName, '--platform', 'all', '--tls-verify=false', ref], {env: env()})
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.stderr).toContain('unchanged')
    expect(await publishedRevision(repoName)).toBe(before + 1)
  })

  it('a default client (CVMFS_ARCH = uname -m = x86_64) lands in the amd64 root; resolve and podman take it', async () => {
    client = await repo.client()
    expect(await readlink(join(client, ref))).toBe(`../../.multiarch/x86_64/${ref}`)
    expect(await readFile(join(client, ref, 'data/arch'), 'utf8')).toBe('amd64\n')
    const rootfs = (await cliOk(['resolve', '--root', client, ref], {env: env()})).trim()
    expect(rootfs).toBe(flatIn(client, images[0]!))
    const run = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /data/arch'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('amd64\n')
    const store = ['--storage-opt', `additionalimagestore=${join(client, 'podmanStore')}`]
    const listed = await podman.run([...store, 'images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])
    expect(listed.exitCode, listed.stderr).toBe(0)
    expect(listed.stdout).toBe(`${images[0]!.configDigest.slice(7, 19)} ${ref}\n`)
    const byName = await podman.run([...store, 'run', '--rm', ref, 'cat', '/data/arch'])
    expect(byName.exitCode, byName.stderr).toBe(0)
    expect(byName.stdout).toBe('amd64\n')
  })

  it('a client whose uname -m is i686 lands in the 386 root, even with CVMFS_ARCH=arm64 in its configuration (2.12)', async () => {
    i686 = await mountExtraClient(repoName, join(work(), 'client-i686'), {config: {CVMFS_ARCH: 'arm64'}, personality: 'i686'})
    expect(await readlink(join(i686.mountPoint, ref))).toBe(`../../.multiarch/i686/${ref}`)
    expect(await readFile(join(i686.mountPoint, ref, 'data/arch'), 'utf8')).toBe('386\n')
    expect((await cliOk(['resolve', '--overlay=false', '--root', i686.mountPoint, ref], {env: env()})).trim()).toBe(flatIn(i686.mountPoint, images[2]!))
    // Its podman store lists that node's image under the name.
    const listed = await podman.run(['--storage-opt', `additionalimagestore=${join(i686.mountPoint, 'podmanStore')}`, 'images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])
    expect(listed.exitCode, listed.stderr).toBe(0)
    expect(listed.stdout).toBe(`${images[2]!.configDigest.slice(7, 19)} ${ref}\n`)
    // The arm64 root is there for arm64 nodes (whose uname -m, aarch64, has its alias link).
    expect(await readlink(join(client, '.multiarch/aarch64'))).toBe('arm64:v8')
    expect(await readFile(join(client, '.multiarch/aarch64', ref, 'data/arch'), 'utf8')).toBe('arm64\n')
  })
})

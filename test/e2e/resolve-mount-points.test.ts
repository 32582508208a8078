/**
 * `podman run --rootfs $(cvmfs-oci resolve IMAGE)` on roots shaped as DUCC shapes them
 * (no /etc/mtab, /etc/hostname, /run/.containerenv), with the real podman and runc, the
 * repository behind a read-only bind mount (a CVMFS client mount's stand-in): resolve
 * prints the `:O` form and says why; publish, linking a name to such a root, adds
 * what is missing. (test/e2e/ducc-roots.test.ts does the same with the real DUCC and a
 * real CVMFS client mount.)
 */
import {cp, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cli, cliOk} from '../helpers/cli.js'
import {writeDuccShapedImage} from '../helpers/ducc-shaped.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import type {TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

describe('resolve and publish on roots that lack what podman needs read-only', () => {
  const work = useTempDir('cvmfs-oci-mount-points-e2e-', 'all')
  let repo: string
  let podman: IsolatedPodman
  let readonly: ReadonlyMount
  let ref1: string
  let ref2: string
  let hex: string
  const entries: TarEntry[] = [
    ...busyboxLayer(),
    {name: 'data/', type: 'directory'},
    {name: 'data/greeting', content: 'hello from a DUCC root\n'},
    // The image's own file, which publish must keep.
    {name: 'etc/hostname', content: 'image-hostname\n'},
  ]
  const command = ['/bin/sh', '-c', 'cat /data/greeting']

  beforeAll(async () => {
    requireTools('podman', 'runc', 'skopeo', 'busybox')
    const layout = join(work(), 'layout')
    const [image] = await writeOciLayout(layout, [{tag: '1', image: {layers: [{entries}], config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}}}])
    hex = image!.configDigest.slice('sha256:'.length)
    ref1 = await pushLayout(layout, '1', registryAddress(), 'mount-points/busybox:1')
    ref2 = await pushLayout(layout, '1', registryAddress(), 'mount-points/busybox:2')
    repo = join(work(), 'repo')
    await writeDuccShapedImage(repo, ref1, image!.configDigest, entries)
    readonly = await readonlyBindMount(repo)
    podman = await isolatedPodman()
  })
  afterAll(async () => {
    await podman?.cleanup()
    await readonly?.unmount()
  })

  const flatIn = (root: string) => join(root, '.flat', hex.slice(0, 2), hex)

  it('prints the :O form of a read-only root without /etc/mtab, says why on stderr, and podman runs it', async () => {
    const before = await snapshotTree(readonly.path)
    const result = await cli(['resolve', '--root', readonly.path, ref1])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(`${flatIn(readonly.path)}:O\n`)
    for (const path of ['/etc/mtab', '/run/.containerenv', ':O', '--overlay=false']) expect(result.stderr).toContain(path)
    expect(result.stderr).not.toContain('/etc/hostname')
    const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('hello from a DUCC root\n')
    expect(diffTrees(before, await snapshotTree(readonly.path))).toEqual([])
  })

  it('does the same for an image ID', async () => {
    const result = await cli(['resolve', '--root', readonly.path, hex.slice(0, 12)])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(`${flatIn(readonly.path)}:O\n`)
  })

  it('with --overlay=false prints the plain path, which podman cannot start read-only', async () => {
    const result = await cli(['resolve', '--overlay=false', '--root', readonly.path, ref1])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(`${flatIn(readonly.path)}\n`)
    expect(result.stderr).toBe('')
    // Why resolve adds :O: the error the issue reports, from the real podman.
    const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
    expect(run.exitCode).not.toBe(0)
    expect(run.stderr).toContain('creating /etc/mtab symlink: read-only file system')
  })

  it('prints the plain path for a writable directory, where podman adds what is missing itself', async () => {
    const writable = join(work(), 'writable')
    await cp(repo, writable, {recursive: true, verbatimSymlinks: true})
    const result = await cli(['resolve', '--root', writable, ref1])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(`${flatIn(writable)}\n`)
    expect(result.stderr).toBe('')
    const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('hello from a DUCC root\n')
  })

  it("publish linking another name to the DUCC root adds what podman needs; then resolve prints the plain path and podman runs it read-only", async () => {
    const out = JSON.parse(await cliOk(['publish', '--root', repo, '--tls-verify=false', '--json', ref2])) as {images: {status: string; path: string; added: string[]}[]}
    expect(out.images[0]).toMatchObject({status: 'linked', path: flatIn(repo)})
    expect(out.images[0]!.added).toEqual(expect.arrayContaining(['etc/mtab', 'run', 'run/.containerenv']))
    // The image's own files win.
    expect(out.images[0]!.added).not.toContain('etc/hostname')
    expect(await readFile(join(flatIn(repo), 'etc/hostname'), 'utf8')).toBe('image-hostname\n')

    for (const ref of [ref2, ref1]) {
      const result = await cli(['resolve', '--root', readonly.path, ref])
      expect(result.exitCode, result.stderr).toBe(0)
      expect(result.stdout).toBe(`${flatIn(readonly.path)}\n`)
      expect(result.stderr).toBe('')
      const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
      expect(run.exitCode, run.stderr).toBe(0)
      expect(run.stdout).toBe('hello from a DUCC root\n')
    }
    // --overlay still forces the :O form.
    expect(await cliOk(['resolve', '--overlay', '--root', readonly.path, ref1])).toBe(`${flatIn(readonly.path)}:O\n`)
  })
})

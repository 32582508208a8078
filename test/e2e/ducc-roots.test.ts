/**
 * The headline command on a root the real DUCC made, read through a real CVMFS client
 * mount (the kit: ../shared/testbed). DUCC 2.12 leaves out /etc/mtab, /etc/hostname and
 * /run, which podman 4.3 needs in a read-only `--rootfs`: resolve prints the `:O` form
 * and says why; once cvmfs-oci publishes another tag of the same image (linking it to
 * DUCC's root) the root has them, and podman runs it read-only.
 */
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cli, cliOk} from '../helpers/cli.js'
import {duccConvert, testRepository} from '../helpers/cvmfs.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, type IsolatedPodman} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const repo = testRepository('ducc-roots')

describe(`podman run --rootfs $(cvmfs-oci resolve IMAGE) on DUCC's roots, through a CVMFS client of ${repo.name}`, () => {
  const {name} = repo
  const work = useTempDir('cvmfs-oci-ducc-roots-', 'all')
  let client: string
  let podman: IsolatedPodman
  let ref1: string
  let ref2: string
  let hex: string
  const command = ['/bin/sh', '-c', 'cat /data/greeting']
  const env = () => repo.env

  beforeAll(async () => {
    requireTools('podman', 'runc', 'skopeo', 'busybox')
    const layout = join(work(), 'layout')
    const entries = [...busyboxLayer(), {name: 'data/', type: 'directory' as const}, {name: 'data/greeting', content: 'hello from DUCC\n'}]
    const [image] = await writeOciLayout(layout, [{tag: '1', image: {layers: [{entries}], config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}}}])
    hex = image!.configDigest.slice('sha256:'.length)
    ref1 = await pushLayout(layout, '1', registryAddress(), 'ducc-roots/busybox:1')
    ref2 = await pushLayout(layout, '1', registryAddress(), 'ducc-roots/busybox:2')
    await repo.start()
    await duccConvert(join(work(), 'ducc-tmp'), `http://${ref1}`, name)
    client = await repo.client()
    podman = await isolatedPodman()
  }, 300_000)
  afterAll(async () => {
    await podman?.cleanup()
    await repo.cleanup()
  }, 120_000)

  const flat = () => join(client, '.flat', hex.slice(0, 2), hex)

  it('resolve prints the :O form of DUCC\'s root and says why; podman runs it (and fails without :O)', async () => {
    const result = await cli(['resolve', '--root', client, ref1], {env: env()})
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe(`${flat()}:O\n`)
    for (const path of ['/etc/mtab', '/etc/hostname', '/run/.containerenv', ':O']) expect(result.stderr).toContain(path)
    const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('hello from DUCC\n')

    const plain = await cliOk(['resolve', '--overlay=false', '--root', client, ref1], {env: env()})
    const failed = await podman.run(['run', '--rm', '--rootfs', plain.trim(), ...command])
    expect(failed.exitCode).not.toBe(0)
    expect(failed.stderr).toContain('creating /etc/mtab symlink: read-only file system')
  })

  it("publish --repo of another tag links it to DUCC's root and adds the mount points; then podman runs it read-only", async () => {
    const out = JSON.parse(await cliOk(['publish', '--repo', name, '--tls-verify=false', '--json', ref2], {env: env()})) as {images: {status: string; path: string; added: string[]}[]}
    expect(out.images[0]).toMatchObject({status: 'linked', path: join('/cvmfs', name, '.flat', hex.slice(0, 2), hex)})
    expect(out.images[0]!.added).toEqual(expect.arrayContaining(['etc/mtab', 'etc/hostname', 'run', 'run/.containerenv']))
    await repo.client()
    for (const ref of [ref2, ref1]) {
      const result = await cli(['resolve', '--root', client, ref], {env: env()})
      expect(result.exitCode, result.stderr).toBe(0)
      expect(result.stdout).toBe(`${flat()}\n`)
      expect(result.stderr).toBe('')
      const run = await podman.run(['run', '--rm', '--rootfs', result.stdout.trim(), ...command])
      expect(run.exitCode, run.stderr).toBe(0)
      expect(run.stdout).toBe('hello from DUCC\n')
    }
  })
})

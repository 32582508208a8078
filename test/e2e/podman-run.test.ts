/**
 * The user's path, with real podman and runc: publish a busybox image, expose the
 * repository read-only (a read-only bind mount stands in for a CVMFS mount), and
 * `podman run --rootfs $(cvmfs-oci resolve IMAGE) CMD`.
 */
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cliOk} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

describe('podman run --rootfs $(cvmfs-oci resolve IMAGE)', () => {
  const work = useTempDir('cvmfs-oci-podman-e2e-', 'all')
  let podman: IsolatedPodman
  let readonly: ReadonlyMount
  let ref: string
  beforeAll(async () => {
    requireTools('podman', 'runc', 'skopeo', 'busybox')
    const layout = join(work(), 'layout')
    // A real busybox image: no /etc/hosts, /etc/mtab, /run/.containerenv — the publisher adds them.
    await writeOciLayout(layout, [
      {
        tag: '1',
        image: {
          layers: [{entries: busyboxLayer()}, {entries: [{name: 'data/', type: 'directory'}, {name: 'data/greeting', content: 'hello from cvmfs-oci\n'}]}],
          config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']},
        },
      },
    ])
    ref = await pushLayout(layout, '1', registryAddress(), 'e2e/busybox:1')
    await cliOk(['publish', '--root', join(work(), 'repo'), '--tls-verify=false', ref])
    readonly = await readonlyBindMount(join(work(), 'repo'))
    podman = await isolatedPodman()
  })
  afterAll(async () => {
    await podman?.cleanup()
    await readonly?.unmount()
  })

  it('runs as root from a read-only repository, and leaves it untouched', async () => {
    const before = await snapshotTree(readonly.path)
    const rootfs = (await cliOk(['resolve', '--root', readonly.path, ref])).trim()
    expect(rootfs.startsWith(readonly.path)).toBe(true)
    const result = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /data/greeting; id -u'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe('hello from cvmfs-oci\n0\n')
    expect(diffTrees(before, await snapshotTree(readonly.path))).toEqual([])
  })

  it('with --overlay runs as a user the image does not know, and can write', async () => {
    const rootfs = (await cliOk(['resolve', '--overlay', '--root', readonly.path, ref])).trim()
    expect(rootfs.endsWith(':O')).toBe(true)
    const result = await podman.run(['run', '--rm', '--user', '4242:4242', '--rootfs', rootfs, '/bin/sh', '-c', 'id -u; echo written > /tmp/out && cat /tmp/out'])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe('4242\nwritten\n')
  })
})

/**
 * What podman needs to find in a read-only `--rootfs` (src/layout/mount-points.ts), on
 * roots shaped as DUCC and images shape them. The list itself was measured with the real
 * podman (see the module's comment); test/e2e/resolve-mount-points.test.ts runs podman.
 */
import {mkdir, rm, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {addMountPoints, missingForReadOnlyPodman} from '../../src/layout/mount-points.js'
import {useTempDir} from '../helpers/temp-dir.js'

const top = useTempDir('cvmfs-oci-mount-points-', 'all')
let counter = 0

/** A flat root as DUCC 2.12 leaves it: its mount-point directories, empty hosts and resolv.conf, nothing else. */
async function duccShapedRoot(): Promise<string> {
  const root = join(top(), `root${counter++}`)
  for (const dir of ['bin', 'dev', 'proc', 'sys', 'tmp', 'var/tmp', 'home', 'root', 'etc']) await mkdir(join(root, dir), {recursive: true})
  await writeFile(join(root, 'etc/hosts'), '')
  await writeFile(join(root, 'etc/resolv.conf'), '')
  return root
}

describe('missingForReadOnlyPodman', () => {
  it("names what a DUCC root lacks, and nothing once publish's mount points are added", async () => {
    const root = await duccShapedRoot()
    expect(await missingForReadOnlyPodman(root)).toEqual(['run', 'etc/hostname', 'etc/mtab', 'run/.containerenv'])
    await addMountPoints(root)
    expect(await missingForReadOnlyPodman(root)).toEqual([])
  })

  it('names everything for an empty root, and a wrong kind as missing', async () => {
    const root = join(top(), `root${counter++}`)
    await mkdir(root)
    expect(await missingForReadOnlyPodman(root)).toEqual(['dev', 'proc', 'sys', 'run', 'etc', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname', 'etc/mtab', 'run/.containerenv'])
    await addMountPoints(root)
    await rm(join(root, 'proc'), {recursive: true})
    await writeFile(join(root, 'proc'), '')
    await rm(join(root, 'etc/hosts'))
    await mkdir(join(root, 'etc/hosts'))
    expect(await missingForReadOnlyPodman(root)).toEqual(['proc', 'etc/hosts'])
  })

  it('follows symlinks inside the root, as runc does', async () => {
    const root = await duccShapedRoot()
    await addMountPoints(root)
    // Resolved inside the root: absolute targets start at the root, ".." stops there.
    await rm(join(root, 'etc/hosts'))
    await symlink('/../../run/hosts', join(root, 'etc/hosts'))
    await writeFile(join(root, 'run/hosts'), '')
    await rm(join(root, 'etc/hostname'))
    await symlink('../run/gone', join(root, 'etc/hostname'))
    // podman only creates /etc/mtab, so anything there will do, even a dangling link.
    await rm(join(root, 'etc/mtab'))
    await symlink('/proc/self/mounts', join(root, 'etc/mtab'))
    await rm(join(root, 'etc/resolv.conf'))
    await symlink('resolv.conf', join(root, 'etc/resolv.conf'))
    expect(await missingForReadOnlyPodman(root)).toEqual(['etc/resolv.conf', 'etc/hostname'])
  })

  it('follows a directory symlink, as in images whose /run is a link to /var/run', async () => {
    const root = await duccShapedRoot()
    await addMountPoints(root)
    await rm(join(root, 'run'), {recursive: true})
    await mkdir(join(root, 'var/run'))
    await symlink('var/run', join(root, 'run'))
    expect(await missingForReadOnlyPodman(root)).toEqual(['run/.containerenv'])
    await writeFile(join(root, 'var/run/.containerenv'), '')
    expect(await missingForReadOnlyPodman(root)).toEqual([])
  })
})

/**
 * publish, rm and gc into a real CernVM-FS stratum-0 (from the kit) through transactions,
 * asserting on the cvmfs_server calls: one transaction per new image, none for an unchanged
 * one; an error in the middle of an image aborts and leaves the repository as it was.
 * Published images are read as a worker node reads them, through a plain client mount:
 * the tricky image equals umoci's unpacking (hardlinks split, as CernVM-FS publishes
 * them; xattrs kept), and podman runs an image from the client mount, plainly and with
 * --overlay.
 */
import {lstat, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cli} from '../helpers/cli.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {exec} from '../helpers/exec.js'
import {corruptBlob, writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {isolatedPodman} from '../helpers/podman.js'
import {pushImage, pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {asPublishedToCvmfs, diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'
import {trickyImage} from './tricky-images.js'

const repo = testRepository('publish')
const work = useTempDir('cvmfs-oci-cvmfs-e2e-', 'all')
let registry: string
const run = (args: string[]) => cli(args, {env: repo.env})
async function ok(args: string[]): Promise<string> {
  const result = await run(args)
  expect(result.exitCode, `cvmfs-oci ${args.join(' ')}:\n${result.stderr}`).toBe(0)
  return result.stdout
}

/** A runnable image: busybox (the layer every test image shares), then one file. */
function image(file: string): ImageSpec {
  return {
    layers: [{entries: busyboxLayer()}, {entries: [{name: 'data/', type: 'directory'}, {name: 'data/which', content: `${file}\n`}]}],
    config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']},
  }
}

const push = (spec: ImageSpec, repoTag: string) => pushImage(work(), spec, repoTag)

const unique = `${Date.now().toString(36)}`
let refA: string
let refB: string

beforeAll(async () => {
  requireTools('skopeo', 'busybox')
  registry = registryAddress()
  await repo.start()
  refA = await push(image('a'), `cvmfs-${unique}/a:1`)
  refB = await push(image('b'), `cvmfs-${unique}/b:1`)
})
afterAll(async () => {
  await repo.cleanup()
})

describe(`publish --repo, into the real stratum-0 ${repo.name}`, () => {
  it('opens one transaction per new image, none for an unchanged one, one for a new tag', async () => {
    const out = JSON.parse(await ok(['publish', '--repo', repo.name, '--tls-verify=false', '--json', refA, refB]))
    expect(out.images.map((i: {status: string}) => i.status)).toEqual(['published', 'published'])
    expect(changeCalls(await repo.calls())).toEqual([
      `transaction ${repo.name} => 0`,
      `publish ${repo.name} => 0`,
      `transaction ${repo.name} => 0`,
      `publish ${repo.name} => 0`,
    ])
    // Nested catalogs where the layout puts them; no bookkeeping published; read-only again.
    await lstat(join(repo.root, '.flat', '.cvmfscatalog'))
    for (const published of out.images) await lstat(join(published.path, '.cvmfscatalog'))
    await expect(lstat(join(repo.root, '.cvmfs-oci'))).rejects.toThrow()
    await expect(writeFile(join(repo.root, 'probe'), 'x')).rejects.toMatchObject({code: 'EROFS'})

    const listed = JSON.parse(await ok(['list', '--repo', repo.name, '--json']))
    expect(listed.roots[0].images.map((i: {reference: string}) => i.reference)).toEqual(expect.arrayContaining([refA, refB]))

    await repo.clearCalls()
    const again = await run(['publish', '--repo', repo.name, '--tls-verify=false', refA])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.stderr).toContain('unchanged')
    expect(changeCalls(await repo.calls())).toEqual([])

    await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${refA}`, `docker://${registry}/cvmfs-${unique}/a:2`])
    const tag = await run(['publish', '--repo', repo.name, '--tls-verify=false', `${registry}/cvmfs-${unique}/a:2`])
    expect(tag.stderr).toContain('linked')
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
  })

  it('resolves through a plain client mount, and podman runs the image from it, plainly and with --overlay', async () => {
    requireTools('podman', 'runc')
    const client = await repo.client()
    const rootfs = (await ok(['resolve', '--root', client, refB])).trim()
    expect(rootfs.startsWith(`${client}/.flat/`)).toBe(true)
    const overlay = (await ok(['resolve', '--overlay', '--root', client, refB])).trim()
    expect(overlay).toBe(`${rootfs}:O`)
    const podman = await isolatedPodman()
    try {
      const plain = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /data/which'])
      expect(plain.exitCode, plain.stderr).toBe(0)
      expect(plain.stdout).toBe('b\n')
      // Writing, as a user the image does not list: only on the overlay.
      const written = await podman.run(['run', '--rm', '--user', '4242', '--rootfs', overlay, '/bin/sh', '-c', 'echo hi > /tmp/x && cat /tmp/x /data/which && id -u'])
      expect(written.exitCode, written.stderr).toBe(0)
      expect(written.stdout).toBe('hi\nb\n4242\n')
    } finally {
      await podman.cleanup()
    }
  })

  it('publishes the tricky image as umoci unpacks it, xattrs kept, read through the stratum-0 and a client', async () => {
    requireTools('umoci', 'getcap')
    const layout = join(work(), 'tricky')
    await writeOciLayout(layout, [{tag: 'tricky', image: trickyImage()}])
    const tricky = await pushLayout(layout, 'tricky', registry, `cvmfs-${unique}-tricky/tricky:1`)
    await repo.clearCalls()
    const published = JSON.parse(await ok(['publish', '--repo', repo.name, '--tls-verify=false', '--json', tricky])).images[0]
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
    const added = new Set<string>(published.added)
    const theirs = asPublishedToCvmfs(await snapshotTree(await umociUnpack(layout, 'tricky', join(work(), 'tricky-bundle'))))
    for (const root of [repo.root, await repo.client()]) {
      const rootfs = (await ok(['resolve', '--root', root, tricky])).trim()
      const ours = await snapshotTree(rootfs, {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
      expect(diffTrees(theirs, asPublishedToCvmfs(ours)), root).toEqual([])
      expect([...ours.values()].filter((info) => info.hardlink !== undefined), root).toEqual([])
      expect((await exec('getcap', [join(rootfs, 'caps', 'ping')])).stdout).toMatch(/ (cap_net_raw,cap_setuid|cap_setuid,cap_net_raw)=ep\n$/)
    }
  })
})

describe('an error in the middle of an image', () => {
  it('aborts the transaction on a hostile layer and leaves the repository as it was, with the original error', async () => {
    const hostile = await push({layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: '../../escape', content: 'x'}]}]}, `cvmfs-${unique}/hostile:1`)
    const before = await snapshotTree(repo.root)
    await repo.clearCalls()
    const result = await run(['publish', '--repo', repo.name, '--tls-verify=false', hostile])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toContain('Code: E_HOSTILE_TRAVERSAL')
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `abort -f ${repo.name} => 0`])
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
    expect(await repo.listLine()).not.toContain('in transaction')
  })

  it('fails a corrupt blob before any transaction opens', async () => {
    const layout = join(work(), 'corrupt')
    const [written] = await writeOciLayout(layout, [{tag: '1', image: image('corrupt')}])
    await corruptBlob(layout, written!.layerDigests[1]!)
    const before = await snapshotTree(repo.root)
    await repo.clearCalls()
    const result = await run(['publish', '--repo', repo.name, '--name', `example.org/cvmfs-${unique}/corrupt:1`, `oci:${layout}:1`])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toMatch(/digest/i)
    expect(changeCalls(await repo.calls())).toEqual([])
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
  })
})

describe('rm and gc --repo', () => {
  it('removes names in one transaction; gc reports, keeps young garbage, then deletes it in one transaction', async () => {
    const flatOf = async (ref: string) => (await ok(['resolve', '--root', repo.root, ref])).trim()
    const flatA = await flatOf(refA)
    await repo.clearCalls()
    await ok(['rm', '--repo', repo.name, refA, `${registry}/cvmfs-${unique}/a:2`])
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
    expect((await run(['resolve', '--root', repo.root, refA])).exitCode).toBe(3)
    await lstat(flatA) // stays for gc
    await expect(readdir(join(repo.root, registry, `cvmfs-${unique}`))).resolves.toEqual(['b:1'])
    const missing = await run(['rm', '--repo', repo.name, refA])
    expect(missing.exitCode).toBe(3)
    expect(missing.stderr).toContain('E_NOT_PUBLISHED')
    expect((await run(['rm', '--repo', repo.name, '--ignore', refA])).exitCode).toBe(0)

    await repo.clearCalls()
    const plan = JSON.parse(await ok(['gc', '--repo', repo.name, '--dry-run', '--grace-period', '0', '--json']))
    expect(plan.dryRun).toBe(true)
    expect(plan.deleted.map((i: {path: string}) => join(repo.root, i.path))).toContain(flatA)
    expect(plan.freedBytes).toBeGreaterThan(1_000_000)
    const young = JSON.parse(await ok(['gc', '--repo', repo.name, '--json']))
    expect(young.deleted).toEqual([])
    expect(young.kept.map((i: {path: string}) => join(repo.root, i.path))).toContain(flatA)
    expect(changeCalls(await repo.calls())).toEqual([])

    const done = JSON.parse(await ok(['gc', '--repo', repo.name, '--grace-period', '0', '--json']))
    expect(done.deleted.map((i: {path: string}) => join(repo.root, i.path))).toContain(flatA)
    expect(done.changes).toBe(1)
    expect(changeCalls(await repo.calls())).toEqual([expect.stringMatching(new RegExp(`^transaction ${repo.name}(/\\S+)? => 0$`)), `publish ${repo.name} => 0`])
    await expect(lstat(flatA)).rejects.toThrow()
    const client = await repo.client()
    await expect(lstat(join(client, flatA.slice(repo.root.length)))).rejects.toThrow()
    expect((await run(['resolve', '--root', client, refA])).exitCode).toBe(3)
    // What is still linked stays.
    const flatB = await flatOf(refB)
    expect(done.deleted.map((i: {path: string}) => join(repo.root, i.path))).not.toContain(flatB)
  })
})

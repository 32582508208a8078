/**
 * `podman run IMAGE` straight from the repository, with real podman 4.3 and runc: two
 * images sharing their base layer are published from the registry, the repository is
 * exposed read-only (a read-only bind mount stands in for a CVMFS mount), and podman uses
 * its podmanStore as an additional image store — listing, running with the image's whole
 * configuration, by name and by digest, `podman configure`, and `rm`. Every registry the
 * images could come from is blocked in podman's registries.conf, so no pull can happen.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cli, cliOk} from '../helpers/cli.js'
import {exec, type ExecResult} from '../helpers/exec.js'
import {writeOciLayout, type ImageSpec, type WrittenImage} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

/** Docker Hub and a registry that cannot exist (RFC 2606): podman's names for the two images. */
const NAME_A = 'docker.io/library/cvmfs-oci-store-a:1'
const NAME_B = 'registry.invalid/e2e/store-b:1'

const base = [...busyboxLayer(), {name: 'etc/motd', content: 'from the base layer\n'}]
const IMAGE_A: ImageSpec = {
  layers: [{entries: base}, {entries: [{name: 'data/', type: 'directory'}, {name: 'data/greeting', content: 'hello from the store\n'}]}],
  config: {
    Env: ['PATH=/bin', 'GREETING=hello'],
    Cmd: ['/bin/sh', '-c', 'echo "$GREETING"; pwd; id -u'],
    WorkingDir: '/data',
    User: '1000',
    Labels: {'org.example.test': 'store'},
  },
}
// Its upper layer deletes a file of the base layer: overlay must not show it, nor the whiteout.
const IMAGE_B: ImageSpec = {
  layers: [{entries: base}, {entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/.wh.motd', content: ''}]}],
  config: {Env: ['PATH=/bin'], Entrypoint: ['/bin/ls'], Cmd: ['-a', '/etc']},
}

interface ListedImage {
  Id: string
  Names?: string[]
  Digest: string
  ReadOnly: boolean
  Labels: Record<string, string> | null
}

const work = useTempDir('cvmfs-oci-store-e2e-', 'all')
let repo: string
let readonly: ReadonlyMount
let podman: IsolatedPodman
let blockedRegistries: string
let a: WrittenImage
let b: WrittenImage

/** podman with the store as an additional image store and every image registry blocked. */
function pm(args: string[], env: Record<string, string> = {}) {
  return podman.run(['--storage-opt', `additionalimagestore=${join(readonly.path, 'podmanStore')}`, ...args], {env: {CONTAINERS_REGISTRIES_CONF: blockedRegistries, ...env}})
}

async function listed(run: (args: string[]) => Promise<ExecResult> = pm): Promise<ListedImage[]> {
  const result = await run(['images', '--format', 'json'])
  expect(result.exitCode, result.stderr).toBe(0)
  return JSON.parse(result.stdout) as ListedImage[]
}

beforeAll(async () => {
  requireTools('podman', 'runc', 'skopeo', 'busybox', 'mount')
  repo = join(work(), 'repo')
  const layout = join(work(), 'layout')
  ;[a, b] = await writeOciLayout(layout, [
    {tag: 'a', image: IMAGE_A},
    {tag: 'b', image: IMAGE_B},
  ])
  const registry = registryAddress()
  for (const [tag, name] of [['a', NAME_A], ['b', NAME_B]] as const) {
    const ref = await pushLayout(layout, tag, registry, `e2e-store/${tag}:1`)
    await cliOk(['publish', '--root', repo, '--tls-verify=false', '--name', name, ref])
  }
  readonly = await readonlyBindMount(repo)
  podman = await isolatedPodman()
  blockedRegistries = join(podman.dir, 'blocked-registries.conf')
  await writeFile(
    blockedRegistries,
    ['unqualified-search-registries = []', ...['docker.io', 'registry.invalid', registry].map((r) => `[[registry]]\nlocation = "${r}"\nblocked = true`), ''].join('\n'),
  )
})

afterAll(async () => {
  await podman?.cleanup()
  await readonly?.unmount()
})

describe('podman with the repository as an additional image store', () => {
  it('lists both images, which share their base layer, with their names, IDs and digests', async () => {
    expect(a.layerDigests[0]).toBe(b.layerDigests[0])
    const images = await listed()
    const byName = (name: string) => images.find((i) => i.Names?.includes(name))
    expect(byName(NAME_A)).toMatchObject({Id: a.configDigest.slice(7), Digest: a.manifestDigest, ReadOnly: true, Labels: {'org.example.test': 'store'}})
    expect(byName(NAME_B)).toMatchObject({Id: b.configDigest.slice(7), Digest: b.manifestDigest, ReadOnly: true})
    expect(images).toHaveLength(2)
    const table = await pm(['images'])
    expect(table.stdout).toMatch(/docker\.io\/library\/cvmfs-oci-store-a\s+1\s/)
    expect(table.stdout).toMatch(/registry\.invalid\/e2e\/store-b\s+1\s/)
    // No pull can happen: podman may not contact any registry these names point to.
    const pull = await pm(['pull', NAME_A])
    expect(pull.exitCode).not.toBe(0)
    expect(pull.stderr).toMatch(/blocked/)
  })

  it("runs an image's Entrypoint and Cmd with its Env, WorkingDir and User, and leaves the repository untouched", async () => {
    const before = await snapshotTree(readonly.path)
    const runA = await pm(['run', '--rm', NAME_A])
    expect(runA.exitCode, runA.stderr).toBe(0)
    expect(runA.stdout).toBe('hello\n/data\n1000\n')
    const runB = await pm(['run', '--rm', NAME_B])
    expect(runB.exitCode, runB.stderr).toBe(0)
    const etc = runB.stdout.split('\n')
    expect(etc).toEqual(expect.arrayContaining(['passwd', 'group']))
    // The base layer's file deleted by the upper layer is gone, and no whiteout shows.
    expect(etc.filter((name) => name.includes('motd'))).toEqual([])
    expect(diffTrees(before, await snapshotTree(readonly.path))).toEqual([])
  })

  it('runs a command given on the command line, by name and by digest, in a writable container', async () => {
    const byName = await pm(['run', '--rm', NAME_A, 'cat', '/data/greeting'])
    expect(byName.exitCode, byName.stderr).toBe(0)
    expect(byName.stdout).toBe('hello from the store\n')
    const byDigest = await pm(['run', '--rm', '--user', '0', `docker.io/library/cvmfs-oci-store-a@${a.manifestDigest}`, 'sh', '-c', 'echo written > /data/new && cat /data/new /data/greeting'])
    expect(byDigest.exitCode, byDigest.stderr).toBe(0)
    expect(byDigest.stdout).toBe('written\nhello from the store\n')
    const entrypoint = await pm(['run', '--rm', NAME_B, '/data'])
    expect(entrypoint.exitCode).not.toBe(0) // ls of a directory image B does not have: the command went to its Entrypoint
    expect(entrypoint.stderr).toContain('/data')
  })

  it('podman configure adds the store to a storage.conf with comments, changing only that key, once', async () => {
    const storageConf = join(work(), 'storage.conf')
    const original = [
      '# containers-storage.conf, as a node has it',
      '[storage]',
      '# the driver podman uses',
      'driver = "overlay"',
      `graphroot = ${JSON.stringify(join(podman.dir, 'root'))}`,
      `runroot = ${JSON.stringify(join(podman.dir, 'runroot'))}`,
      '',
      '[storage.options]',
      '# pulls may not use partial images here',
      'pull_options = {enable_partial_images = "false"}',
      '',
      '[storage.options.overlay]',
      'mountopt = "nodev" # keep',
      '',
    ].join('\n')
    await writeFile(storageConf, original)
    const first = await cli(['podman', 'configure', '--storage-conf', storageConf, '--root', readonly.path])
    expect(first.exitCode, first.stderr).toBe(0)
    const edited = await readFile(storageConf, 'utf8')
    const added = edited.split('\n').filter((line) => !original.split('\n').includes(line))
    expect(added).toEqual([`additionalimagestores = [${JSON.stringify(join(readonly.path, 'podmanStore'))}]`])
    expect(edited.replace(`${added[0]}\n`, '')).toBe(original)
    const second = await cli(['podman', 'configure', '--storage-conf', storageConf, '--root', readonly.path])
    expect(second.exitCode, second.stderr).toBe(0)
    expect(second.stderr).toContain('nothing changed')
    expect(await readFile(storageConf, 'utf8')).toBe(edited)
    // podman reads the file: no --storage-opt needed any more. (Not with --root either:
    // podman 4.3 then ignores the file's storage options, so its graph root comes from the file too.)
    const viaConf = (args: string[]) =>
      exec('podman', args, {env: {...podman.env, CONTAINERS_STORAGE_CONF: storageConf, CONTAINERS_REGISTRIES_CONF: blockedRegistries}, reject: false})
    expect((await listed(viaConf)).flatMap((i) => i.Names ?? []).sort()).toEqual([NAME_A, NAME_B].sort())
    const printed = await cliOk(['podman', 'configure', '--repo', 'unpacked.example.org', '--print'])
    expect(printed).toBe('[storage.options]\nadditionalimagestores = ["/cvmfs/unpacked.example.org/podmanStore"]\n')
  })

  it('after rm, the image is gone from podman and the other still runs', async () => {
    const removed = await cli(['rm', '--root', repo, NAME_B])
    expect(removed.exitCode, removed.stderr).toBe(0)
    const images = await listed()
    expect(images.flatMap((i) => i.Names ?? [])).toEqual([NAME_A])
    expect((await pm(['image', 'exists', NAME_B])).exitCode).toBe(1)
    const run = await pm(['run', '--rm', NAME_A, 'cat', '/data/greeting'])
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toBe('hello from the store\n')
  })
})

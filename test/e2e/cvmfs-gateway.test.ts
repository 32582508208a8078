/**
 * Several publishers at once through a REAL CernVM-FS repository gateway (the kit's
 * `cvmfs-gateway.sh`: cvmfs_gateway + cvmfs_receiver 2.12, three publishers in their own
 * mount namespaces, each with its own cvmfs-oci state as on separate machines).
 *
 * What the gateway does (../shared/testbed/README.md, "Gateway"): a lease is one path, an
 * overlapping request exits 16 (`Path busy`), writes outside the lease are dropped without
 * a word, and a publisher's view can be behind. So cvmfs-oci must take narrow leases (the
 * flat root alone for the merge; the metadata, the podman store and the link each in a
 * short change of their own), wait for a busy lease instead of failing, re-read what it
 * updates inside each lease, never publish an image twice, and read back what it wrote.
 * Everything is checked as a worker node sees it: through a plain client mount, with podman.
 */
import {readFile, readlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cliOk} from '../helpers/cli.js'
import {changeCalls} from '../helpers/cvmfs.js'
import {gatewayRepository, type Publisher} from '../helpers/cvmfs-gateway.js'
import type {ImageSpec} from '../helpers/oci-layout.js'
import {isolatedPodman} from '../helpers/podman.js'
import {pushImage} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const repo = gatewayRepository('gateway')
const unique = `gw-${Date.now().toString(36)}`
const work = useTempDir('cvmfs-oci-gateway-e2e-', 'all')
let a: Publisher
let b: Publisher
let c: Publisher

/** A runnable image: busybox, then one file naming it. */
function image(which: string): ImageSpec {
  return {
    layers: [{entries: busyboxLayer({podmanMountPoints: true})}, {entries: [{name: 'data/', type: 'directory'}, {name: 'data/which', content: `${which}\n`}]}],
    config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']},
  }
}

const refs = new Map<string, string>()
async function push(which: string): Promise<string> {
  const ref = await pushImage(work(), image(which), `${unique}/${which}:1`)
  refs.set(which, ref)
  return ref
}

const publishArgs = (ref: string, ...more: string[]) => ['publish', '--repo', repo.name, '--tls-verify=false', '--json', ...more, ref]
const oneLine = (text: string) => text.replace(/\n ›/g, ' ').replace(/\s+/g, ' ')
/** The error of a failed `publish --json`, from its summary. */
const failureOf = (stdout: string) => (JSON.parse(stdout) as {failed: {error: {code: string; message: string}}[]}).failed[0]!.error

/** The image list of the podman store as a node reads it, by name. */
async function storeNames(client: string): Promise<string[]> {
  const images = JSON.parse(await readFile(join(client, 'podmanStore/overlay-images/images.json'), 'utf8')) as {names?: string[]}[]
  return images.flatMap((i) => i.names ?? []).sort()
}

/** The flat root a public link leads to, relative (`.flat/<hh>/<hex>`). */
async function flatOf(client: string, ref: string): Promise<string> {
  return (await readlink(join(client, ref))).replace(/^(\.\.\/)+/, '')
}

/** Transactions a publisher opened on the whole repository (no lease path). */
const wholeRepository = (calls: string[]) => calls.filter((call) => call === `transaction ${repo.name} => 0`)

beforeAll(async () => {
  requireTools('skopeo', 'busybox', 'getfattr')
  await repo.start(['a', 'b', 'c'])
  a = repo.publisher('a')
  b = repo.publisher('b')
  c = repo.publisher('c')
  for (const which of ['one', 'two', 'three', 'same', 'sync1', 'sync2', 'sync3', 'sync4', 'wait', 'killed', 'dropped']) await push(which)
}, 300_000)
afterAll(async () => {
  await repo.cleanup()
})

describe(`three publishers of ${repo.name} behind a real gateway`, () => {
  it('publish different images at once: narrow leases, nobody waits for the whole repository, nothing is lost', async () => {
    const runs = [a.start(publishArgs(refs.get('one')!)), b.start(publishArgs(refs.get('two')!)), c.start(publishArgs(refs.get('three')!))]
    const results = await Promise.all(runs.map((r) => r.exited))
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0)
    for (const result of results) expect(JSON.parse(result.stdout).images[0].status).toBe('published')
    for (const publisher of [a, b, c]) {
      const calls = changeCalls(await publisher.calls())
      // The merge under a lease on its own flat root; nothing on the whole repository.
      expect(calls.some((call) => /^transaction \S+\/\.flat(\/[0-9a-f]{2}(\/[0-9a-f]{64})?)? => 0$/.test(call)), calls.join('\n')).toBe(true)
      expect(wholeRepository(calls), calls.join('\n')).toEqual([])
    }

    const client = await repo.client()
    const names = await storeNames(client)
    for (const which of ['one', 'two', 'three']) {
      const ref = refs.get(which)!
      // Every name resolves, its root is there, its metadata too, and the store names it.
      const rootfs = (await cliOk(['resolve', '--root', client, ref])).trim()
      expect(await readFile(join(rootfs.replace(/:O$/, ''), 'data/which'), 'utf8')).toBe(`${which}\n`)
      expect(JSON.parse(await readFile(join(client, '.metadata', ref, 'cvmfs-oci.json'), 'utf8')).name).toBe(ref)
      expect(names).toContain(ref)
    }

    requireTools('podman', 'runc')
    const podman = await isolatedPodman()
    try {
      const rootfs = (await cliOk(['resolve', '--root', client, refs.get('two')!])).trim()
      const plain = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/sh', '-c', 'cat /data/which'])
      expect(plain.exitCode, plain.stderr).toBe(0)
      expect(plain.stdout).toBe('two\n')
      const byName = await podman.run(['--storage-opt', `additionalimagestore=${join(client, 'podmanStore')}`, 'run', '--rm', refs.get('three')!, 'cat', '/data/which'])
      expect(byName.exitCode, byName.stderr).toBe(0)
      expect(byName.stdout).toBe('three\n')
    } finally {
      await podman.cleanup()
    }
  })

  it('the same image from two publishers at once is merged and published once', async () => {
    for (const publisher of [a, b]) await publisher.clearCalls()
    const ref = refs.get('same')!
    const results = await Promise.all([a.start(publishArgs(ref)), b.start(publishArgs(ref))].map((r) => r.exited))
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0)
    const statuses = results.map((result) => JSON.parse(result.stdout).images[0].status).sort()
    expect(statuses.filter((s) => s === 'published')).toEqual(['published'])
    // Exactly one flat-root transaction was published, over both publishers' calls.
    const heavy = (calls: string[]) => calls.filter((call, i) => /^transaction \S+\/\.flat\//.test(call) && calls[i + 1] === `publish ${repo.name} => 0`)
    const published = [...heavy(changeCalls(await a.calls())), ...heavy(changeCalls(await b.calls()))]
    expect(published).toHaveLength(1)
    const client = await repo.client()
    expect(await readFile(join(client, ref, 'data/which'), 'utf8')).toBe('same\n')
    expect(await storeNames(client)).toContain(ref)
  })

  it('sync of one wish list on three publishers at once: every image published once, every name kept', async () => {
    const list = join(work(), 'wishlist.yaml')
    const inputs = ['sync1', 'sync2', 'sync3', 'sync4'].map((which) => `  - 'http://${refs.get(which)!}'`)
    await writeFile(list, ['version: 1', 'user: cvmfsunpacker', `cvmfs_repo: '${repo.name}'`, "output_format: 'x/$(image)'", 'input:', ...inputs, ''].join('\n'))
    const runs = [a, b, c].map((publisher) => publisher.start(['sync', '--json', list]))
    const results = await Promise.all(runs.map((r) => r.exited))
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0)
    const counts = results.map((result) => JSON.parse(result.stdout).counts)
    expect(counts.reduce((sum, count) => sum + count.published, 0)).toBe(4)
    for (const count of counts) expect(count.failed).toBe(0)

    const client = await repo.client()
    const names = await storeNames(client)
    // Everything published so far is still there: no publisher's light part lost another's.
    for (const which of ['one', 'two', 'three', 'same', 'sync1', 'sync2', 'sync3', 'sync4']) {
      const ref = refs.get(which)!
      expect(await readFile(join(client, ref, 'data/which'), 'utf8')).toBe(`${which}\n`)
      expect(names).toContain(ref)
    }
  })

  it('a busy lease is waited for, naming who holds it; exit 6 only after --lock-timeout', async () => {
    // Publisher c holds a lease on the metadata area, as another tool would.
    const held = await c.server(['transaction', `${repo.name}/.metadata`])
    expect(held.exitCode, held.stderr).toBe(0)
    const ref = refs.get('wait')!
    try {
      const started = Date.now()
      const timedOut = await a.cli(publishArgs(ref, '--lock-timeout', '6'))
      expect(timedOut.exitCode, timedOut.stderr).toBe(6)
      expect(Date.now() - started).toBeGreaterThanOrEqual(6000)
      expect(oneLine(timedOut.stderr)).toMatch(new RegExp(`waiting for the gateway lease on ${repo.name}/\\.metadata`))
      expect(failureOf(timedOut.stdout).code).toBe('E_LEASE_BUSY')

      const waiting = a.start(publishArgs(ref, '--lock-timeout', '300'))
      const deadline = Date.now() + 120_000
      while (!/waiting for the gateway lease/.test(waiting.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
      expect(waiting.stderr()).toMatch(/waiting for the gateway lease/)
      const released = await c.server(['abort', '-f', repo.name])
      expect(released.exitCode, released.stderr).toBe(0)
      const done = await waiting.exited
      expect(done.exitCode, done.stderr).toBe(0)
    } finally {
      await c.server(['abort', '-f', repo.name])
    }
    const client = await repo.client()
    expect(await readFile(join(client, ref, 'data/which'), 'utf8')).toBe('wait\n')
  })

  it('a publisher killed mid-lease leaves the repository as it was; its next run releases the lease and the image is published', async () => {
    const ref = refs.get('killed')!
    const before = await repo.revision()
    // Killed right before it would publish its first change (the flat root): the lease stays held.
    const killed = await a.start(publishArgs(ref), {env: {CVMFS_SERVER_HOOK_VERB: 'publish', CVMFS_SERVER_HOOK: 'kill -KILL "$CVMFS_SERVER_CALLER"; exit 1'}}).exited
    expect(killed.exitCode, killed.stderr).toBe(137)
    const leases = await repo.leases()
    expect(leases.map((lease) => lease.path)).toEqual([expect.stringMatching(new RegExp(`^${repo.name.replaceAll('.', '\\.')}/\\.flat/`))])
    expect(await repo.revision()).toBe(before)
    const client = await repo.client()
    await expect(readlink(join(client, ref))).rejects.toThrow()

    // Another publisher waits for that lease rather than failing...
    const other = b.start(publishArgs(ref, '--lock-timeout', '300'))
    const deadline = Date.now() + 120_000
    while (!/waiting for the gateway lease/.test(other.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200))
    expect(other.stderr()).toMatch(/waiting for the gateway lease/)
    // ...until the killed publisher's next run aborts what it left, which drops the lease.
    const next = await a.cli(['publish', '--repo', repo.name, '--tls-verify=false', refs.get('one')!])
    expect(next.exitCode, next.stderr).toBe(0)
    expect(next.stderr).toMatch(/left in a transaction by cvmfs-oci .* which is gone: aborting/)
    const done = await other.exited
    expect(done.exitCode, done.stderr).toBe(0)
    expect(await readFile(join(await repo.client(), ref, 'data/which'), 'utf8')).toBe('killed\n')
    expect(await repo.leases()).toEqual([])
  })

  it('what the gateway did not publish is an error: the published revision is read back', async () => {
    const ref = refs.get('dropped')!
    // Between cvmfs-oci's own checks and `cvmfs_server publish`, a file it wrote disappears.
    const hook = `rm -f '/cvmfs/${repo.name}/.metadata/${ref}/manifest.json'`
    const result = await a.cli(publishArgs(ref), {env: {CVMFS_SERVER_HOOK_VERB: 'publish', CVMFS_SERVER_HOOK: hook}})
    expect(result.exitCode, result.stderr).not.toBe(0)
    expect(failureOf(result.stdout)).toMatchObject({code: 'E_NOT_PUBLISHED_BACK', message: expect.stringContaining(`.metadata/${ref}/manifest.json`)})
  })

  it('rm and gc through the gateway', async () => {
    const client0 = await repo.client()
    const ref = refs.get('one')!
    const flat = await flatOf(client0, ref)
    const removed = await b.cli(['rm', '--repo', repo.name, ref])
    expect(removed.exitCode, removed.stderr).toBe(0)
    let client = await repo.client()
    await expect(readlink(join(client, ref))).rejects.toThrow()
    expect(await storeNames(client)).not.toContain(ref)
    expect(await storeNames(client)).toContain(refs.get('two')!)

    const collected = await c.cli(['gc', '--repo', repo.name, '--grace-period', '0', '--json'])
    expect(collected.exitCode, collected.stderr).toBe(0)
    expect(JSON.parse(collected.stdout).deleted.map((item: {path: string}) => item.path)).toContain(flat)
    client = await repo.client()
    await expect(readFile(join(client, flat, 'data/which'))).rejects.toThrow()
    expect(await readFile(join(client, refs.get('two')!, 'data/which'), 'utf8')).toBe('two\n')
  })
})

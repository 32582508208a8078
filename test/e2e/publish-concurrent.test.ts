/**
 * Several cvmfs-oci runs started together on one directory repository: they take turns
 * on the repository lock, each saying whose turn it waits for, and all of them succeed.
 * Every name then resolves to a flat root equal to the one a lone publish makes, and no
 * bookkeeping (`.cvmfs-oci/`) is left in the repository.
 */
import {randomBytes} from 'node:crypto'
import {lstat, readdir, readFile, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {cli, cliOk, startCli, until, type RunningCli} from '../helpers/cli.js'
import type {ExecResult} from '../helpers/exec.js'
import type {ImageSpec, LayerSpec} from '../helpers/oci-layout.js'
import {pushImage} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

const work = useTempDir('cvmfs-oci-concurrent-', 'all')
/** The reference repository: every image published into it alone, one after the other. */
let reference: string
const unique = Date.now().toString(36)

/** One base layer for all (so later publishes reuse the first one's root), one layer of its own. */
const base: LayerSpec = {
  entries: [
    {name: 'etc/', type: 'directory'},
    {name: 'etc/os-release', content: 'ID=concurrent\n'},
    {name: 'usr/', type: 'directory'},
    {name: 'usr/bin/', type: 'directory'},
    {name: 'usr/bin/tool', content: randomBytes(64 << 10), mode: 0o755},
    {name: 'usr/bin/tool-link', type: 'link', linkname: 'usr/bin/tool'},
  ],
}
function image(content: string): ImageSpec {
  return {config: {Env: [`IMAGE=${content}`], Cmd: ['/usr/bin/tool']}, layers: [base, {entries: [{name: 'etc/version', content}]}]}
}

/** Names pushed to the registry, by short name (`a` → `REGISTRY/concurrent-…/a:1`). */
const refs = new Map<string, string>()
const SMALL = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'x']
/**
 * Each image published alone into the reference repository: its flat root, and what
 * publish adds to it (mount points, the catalog marker), made at publish time (so with
 * that time as mtime).
 */
const alone = new Map<string, {path: string; stamped: Set<string>}>()

beforeAll(async () => {
  requireTools('skopeo', 'getfattr', 'flock')
  reference = join(work(), 'reference')
  for (const name of SMALL) refs.set(name, await pushImage(work(), image(name), `concurrent-${unique}/${name}:1`))
  for (const name of SMALL) {
    const {images} = JSON.parse(await cliOk(['publish', '--root', reference, '--tls-verify=false', '--json', refs.get(name)!])) as {images: {path: string; added: string[]}[]}
    alone.set(name, {path: images[0]!.path, stamped: new Set(['.cvmfscatalog', ...images[0]!.added])})
  }
  // Big enough that it is still unpacking when stopped: 16 files of 4 MiB that do not compress.
  const data = Array.from({length: 16}, (_, i) => ({name: `data/blob${i}`, content: randomBytes(4 << 20)}))
  refs.set('big', await pushImage(work(), {layers: [base, {entries: [{name: 'data/', type: 'directory'}, ...data]}]}, `concurrent-${unique}/big:1`))
}, 300_000)

const publishArgs = (root: string, name: string) => ['publish', '--root', root, '--tls-verify=false', refs.get(name)!]

/** `name` resolves in `root` to a flat root equal, node for node, to the one a lone publish made. */
async function expectSameRoot(root: string, name: string): Promise<void> {
  const ref = refs.get(name)!
  const got = await cli(['resolve', '--root', root, ref])
  expect(got.exitCode, `resolve ${ref}: ${got.stderr}`).toBe(0)
  const want = alone.get(name)!
  const snapshot = async (dir: string) => {
    const nodes = await snapshotTree(dir)
    for (const rel of want.stamped) delete nodes.get(rel)!.mtimeMs
    return nodes
  }
  expect(diffTrees(await snapshot(want.path), await snapshot(got.stdout.trim())), name).toEqual([])
}

async function expectNoBookkeeping(root: string): Promise<void> {
  await expect(lstat(join(root, '.cvmfs-oci')), `${root}/.cvmfs-oci is left`).rejects.toThrow()
}

function expectSucceeded(results: ExecResult[]): void {
  for (const result of results) expect(result.exitCode, `${result.stderr}${result.stdout}`).toBe(0)
}

/** How a waiting run names the holder it waits for. */
function waitsFor(run: RunningCli, holder: RunningCli, root: string): boolean {
  return new RegExp(`waiting for process ${holder.pid} on ${hostname()} since \\S+, which holds repository ${root}`).test(run.stderr())
}

/**
 * Start a big publish into `root` and stop it (SIGSTOP) while it unpacks, holding the
 * repository lock: whoever starts now must wait for it.
 */
async function stoppedHolder(root: string): Promise<RunningCli> {
  const holder = startCli(publishArgs(root, 'big'))
  const staging = join(root, '.cvmfs-oci', 'staging')
  await until(
    async () => {
      const inside = await readdir(staging).catch(() => [] as string[])
      return inside.length > 0 && (await readdir(join(staging, inside[0]!, 'data')).catch(() => [] as string[])).length > 0
    },
    'the big publish unpacks',
    holder.stderr,
  )
  holder.child.kill('SIGSTOP')
  return holder
}

/** Let `holder` go on once every one of `waiters` says it waits for it; then all must end well. */
async function releaseWhenAllWait(root: string, holder: RunningCli, waiters: RunningCli[]): Promise<ExecResult[]> {
  try {
    await until(
      () => waiters.every((run) => waitsFor(run, holder, root) || run.child.exitCode !== null),
      `every run says it waits for process ${holder.pid}`,
      () => waiters.map((run) => `--- ${run.pid}:\n${run.stderr()}`).join('\n'),
    )
  } finally {
    holder.child.kill('SIGCONT')
  }
  const results = await Promise.all([holder, ...waiters].map((run) => run.exited))
  expectSucceeded(results)
  for (const run of waiters) expect(waitsFor(run, holder, root), run.stderr()).toBe(true)
  return results.slice(1)
}

describe('publishers started together into one directory repository', () => {
  it('four into a new directory all succeed, one at a time', async () => {
    const root = join(work(), 'new-repo')
    const runs = ['a', 'b', 'c', 'd'].map((name) => startCli(publishArgs(root, name)))
    const results = await Promise.all(runs.map((run) => run.exited))
    expectSucceeded(results)
    // Whoever waited names one of the others.
    const pids = runs.map((run) => run.pid)
    for (const result of results) {
      for (const [, pid] of result.stderr.matchAll(/waiting for process (\d+) on /g)) expect(pids).toContain(Number(pid))
    }
    for (const name of ['a', 'b', 'c', 'd']) await expectSameRoot(root, name)
    await expectNoBookkeeping(root)
  })

  it('four into a directory holding images wait for the holder, say so, and all succeed', async () => {
    const root = join(work(), 'existing-repo')
    await cliOk(publishArgs(root, 'a'))
    await cliOk(publishArgs(root, 'b'))
    const holder = await stoppedHolder(root)
    const waiters = ['c', 'd', 'e', 'f'].map((name) => startCli(publishArgs(root, name)))
    await releaseWhenAllWait(root, holder, waiters)
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) await expectSameRoot(root, name)
    await cliOk(['resolve', '--root', root, refs.get('big')!])
    await expectNoBookkeeping(root)
  })

  it('publish, rm, gc and sync started together take turns on the same lock', async () => {
    const root = join(work(), 'mixed-repo')
    for (const name of ['a', 'b', 'x']) await cliOk(publishArgs(root, name))
    // x's flat root is garbage from now on.
    await cliOk(['rm', '--root', root, refs.get('x')!])
    const garbage = join(root, '.flat')
    const xRoot = alone.get('x')!.path.split('/.flat/')[1]!
    const wishlist = join(work(), 'mixed.yaml')
    await writeFile(
      wishlist,
      ['version: 1', "cvmfs_repo: 'ignored.local'", "output_format: 'https://example.org/$(image)'", 'input:', ...['g', 'h'].map((name) => `  - 'http://${refs.get(name)}'`), ''].join('\n'),
    )

    const holder = await stoppedHolder(root)
    const waiters = [
      startCli(publishArgs(root, 'c')),
      startCli(['rm', '--root', root, refs.get('a')!]),
      startCli(['gc', '--root', root, '--grace-period', '0', '--json']),
      startCli(['sync', '--root', root, wishlist]),
    ]
    const [, , gc] = await releaseWhenAllWait(root, holder, waiters)

    for (const name of ['b', 'c', 'g', 'h']) await expectSameRoot(root, name)
    await cliOk(['resolve', '--root', root, refs.get('big')!])
    expect((await cli(['resolve', '--root', root, refs.get('a')!])).exitCode).toBe(3)
    // gc ran whole, between the others: what it deleted is gone, x's unreferenced root among it.
    const deleted = (JSON.parse(gc!.stdout) as {deleted: {path: string}[]}).deleted.map((item) => item.path)
    expect(deleted).toContain(join('.flat', xRoot))
    for (const path of deleted) await expect(lstat(join(root, path)), path).rejects.toThrow()
    await expect(lstat(join(garbage, xRoot))).rejects.toThrow()
    await expectNoBookkeeping(root)
  })

  it('rm of images that are not published answers at once, without waiting for the lock', async () => {
    const root = join(work(), 'noop-rm-repo')
    await cliOk(publishArgs(root, 'a'))
    const holder = await stoppedHolder(root)
    let waiter: RunningCli | undefined
    try {
      const ignored = await cli(['rm', '--ignore', '--root', root, `example.org/concurrent-${unique}/none:1`], {timeoutMs: 20_000})
      expect(ignored.exitCode, ignored.stderr).toBe(0)
      expect(ignored.stderr).toMatch(/not published in /)
      expect(ignored.stderr).not.toMatch(/waiting for/)
      const missing = await cli(['rm', '--root', root, `example.org/concurrent-${unique}/none:1`], {timeoutMs: 20_000})
      expect(missing.exitCode, missing.stderr).toBe(3)
      // One with something to remove still takes its turn.
      waiter = startCli(['rm', '--root', root, refs.get('a')!])
    } catch (error) {
      holder.child.kill('SIGCONT')
      throw error
    }
    await releaseWhenAllWait(root, holder, [waiter])
    expect((await cli(['resolve', '--root', root, refs.get('a')!])).exitCode).toBe(3)
    await expectNoBookkeeping(root)
  })

  it('a publish that waited long for the lock publishes what its tag names when its turn comes', async () => {
    const root = join(work(), 'moved-tag-repo')
    const tag = `concurrent-${unique}/moving:1`
    const ref = await pushImage(work(), image('before'), tag)
    const holder = await stoppedHolder(root)
    let waiter: RunningCli
    try {
      waiter = startCli(['publish', '--root', root, '--tls-verify=false', ref])
      await until(() => waitsFor(waiter, holder, root), 'the publish waits for the holder', () => waiter.stderr())
      // The tag moves while the publish waits (longer than a manifest asked for before the lock is trusted).
      await pushImage(work(), image('after'), tag)
      await new Promise((done) => setTimeout(done, 11_000))
    } catch (error) {
      holder.child.kill('SIGCONT')
      throw error
    }
    await releaseWhenAllWait(root, holder, [waiter])
    const flat = (await cliOk(['resolve', '--root', root, ref])).trim()
    expect(await readFile(join(flat, 'etc/version'), 'utf8')).toBe('after')
    // It said so: the manifest was asked for again.
    expect(waiter.stderr().match(/fetching manifest/g)).toHaveLength(2)
  }, 120_000)
})

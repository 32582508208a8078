/**
 * Nested catalogs inside flat roots, in a real CernVM-FS stratum-0 (from the kit): an
 * image with big subtrees, published through a transaction and through ingest, gets a
 * catalog on each subdirectory whose remaining subtree weighs 1000 entries or more
 * (bottom-up), as `cvmfs_server list-catalogs` lists them; the image's own `.cvmfscatalog`
 * stays a catalog of its own and is not counted as ours; the tree read through a plain
 * client mount equals what umoci unpacks; a small image gets no marker beyond its root's;
 * rm and gc take the nested catalogs away with their root (transaction and ingest); an image with a
 * symlink named `.cvmfscatalog` is refused before anything is published.
 */
import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli} from '../helpers/cli.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import type {TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {asPublishedToCvmfs, diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'

const repo = testRepository('nested')
// On tmpfs where there is one: umoci unpacks 3 600 files for the comparison.
const work = useTempDir('cvmfs-oci-nested-e2e-', 'all', existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
let layout: string
const run = (args: string[]) => cli(args, {env: repo.env})

/** `n` small files below `dir`, each holding its own path. */
function files(dir: string, n: number, prefix = 'f'): TarEntry[] {
  return Array.from({length: n}, (_, i) => ({name: `${dir}/${prefix}${i}`, content: `${dir}/${prefix}${i}\n`}))
}
const dirs = (...names: string[]): TarEntry[] => names.map((name) => ({name: `${name}/`, type: 'directory' as const}))

/**
 * ~3 600 entries: usr/share/big/a (1 100 files) and usr/share/big/b (14 directories of 100)
 * are cut; usr/share/edge (998 files: weight 999) is not, so usr/share, holding it,
 * weighs 1 + 53 + 999 + 21 = 1074 and is cut too; usr/lib/own holds the image's own
 * `.cvmfscatalog`. `which` makes each variant its own image (config digest).
 */
function bigImage(which: string): ImageSpec {
  const b = Array.from({length: 14}, (_, i) => `usr/share/big/b/d${i}`)
  return {
    layers: [
      {
        entries: [
          ...dirs('usr', 'usr/share', 'usr/share/big', 'usr/share/big/a', 'usr/share/big/b', ...b, 'usr/share/edge', 'usr/share/small', 'usr/lib', 'usr/lib/own'),
          ...files('usr/share/big', 50),
          ...files('usr/share/big/a', 1100),
          ...b.flatMap((dir) => files(dir, 100)),
          ...files('usr/share/edge', 998),
          ...files('usr/share/small', 20),
          {name: 'usr/lib/own/.cvmfscatalog', content: ''},
          ...files('usr/lib/own', 5),
        ],
      },
      {entries: [{name: 'which', content: `${which}\n`}]},
    ],
  }
}

/** The catalogs below one flat root, as `cvmfs_server list-catalogs -x` prints them (one path a line). */
async function catalogsBelow(flatRel: string): Promise<string[]> {
  const listed = await repo.server(['list-catalogs', '-x', repo.name])
  expect(listed.exitCode, listed.stderr).toBe(0)
  return listed.stdout
    .split('\n')
    .filter((line) => line.startsWith(`/${flatRel}`))
    .map((line) => line.slice(flatRel.length + 1) || '/')
    .sort()
}

const flatRelOf = (configDigest: string) => `.flat/${configDigest.slice(7, 9)}/${configDigest.slice(7)}`
const OURS = ['usr/share/.cvmfscatalog', 'usr/share/big/a/.cvmfscatalog', 'usr/share/big/b/.cvmfscatalog']

beforeAll(async () => {
  requireTools('skopeo', 'umoci', 'getfattr')
  await repo.start()
  layout = join(work(), 'layout')
  await writeOciLayout(layout, [
    {tag: 'tx', image: bigImage('tx')},
    {tag: 'ingest', image: bigImage('ingest')},
    {tag: 'small', image: {layers: [{entries: [...dirs('etc', 'opt'), {name: 'etc/os-release', content: 'ID=small\n'}, ...files('opt', 200)]}]}},
    {tag: 'hostile', image: {layers: [{entries: [...dirs('opt'), ...files('opt', 3), {name: 'opt/.cvmfscatalog', type: 'symlink', linkname: '/etc/passwd'}]}]}},
  ])
})
afterAll(async () => {
  await repo.cleanup()
})

describe(`nested catalogs in flat roots, in the real stratum-0 ${repo.name}`, () => {
  /** Publish one tag of the layout; the flat root, its markers on record and what cvmfs_server was asked. */
  async function publish(tag: string, mode: string[]): Promise<{flatRel: string; added: string[]; recorded: string[]; calls: string[]; log: string}> {
    await repo.clearCalls()
    const result = await run(['publish', '--repo', repo.name, ...mode, '--json', '--name', `localhost/nested/${tag}:1`, `oci:${layout}:${tag}`])
    expect(result.exitCode, result.stderr).toBe(0)
    const image = JSON.parse(result.stdout).images[0]
    const flatRel = flatRelOf(image.configDigest)
    const record = JSON.parse(await readFile(join(repo.root, '.metadata', `${flatRel}.json`), 'utf8'))
    return {flatRel, added: image.added, recorded: record.added, calls: changeCalls(await repo.calls()), log: result.stderr}
  }

  /** The image as a worker node reads it equals umoci's unpacking, but for the markers publish added. */
  async function expectReadBack(tag: string, flatRel: string, added: string[]): Promise<void> {
    const client = await repo.client()
    const rootfs = (await run(['resolve', '--root', client, `localhost/nested/${tag}:1`])).stdout.trim()
    expect(rootfs).toBe(join(client, flatRel))
    const exclude = new Set(['.cvmfscatalog', ...added])
    const ours = await snapshotTree(rootfs, {exclude: (rel) => exclude.has(rel)})
    const theirs = await snapshotTree(await umociUnpack(layout, tag, join(work(), `bundle-${tag}`)))
    expect(diffTrees(asPublishedToCvmfs(theirs), asPublishedToCvmfs(ours))).toEqual([])
    expect(ours.get('usr/lib/own/.cvmfscatalog')).toMatchObject({type: 'file', size: 0})
    expect(await readFile(join(rootfs, 'usr/share/big/b/d13/f99'), 'utf8')).toBe('usr/share/big/b/d13/f99\n')
  }

  it('through a transaction: a catalog on each big subtree, bottom-up, the image’s own kept, all in one publish; gc takes them away with the root', async () => {
    const {flatRel, added, recorded, calls, log} = await publish('tx', [])
    expect(calls).toEqual([`transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
    expect(await catalogsBelow(flatRel)).toEqual(['/', '/usr/lib/own', '/usr/share', '/usr/share/big/a', '/usr/share/big/b'])
    expect(log).toMatch(/: 3 nested catalog\(s\) in the flat root \(its own catalog keeps \d+ entries\): usr\/share \(1074\), usr\/share\/big\/a \(1101\), usr\/share\/big\/b \(1415\)\n/)
    // Ours are on record as added (a root started from this one must not inherit them);
    // the image's own marker is the image's.
    for (const list of [added, recorded]) {
      expect(list).toEqual(expect.arrayContaining(OURS))
      expect(list).not.toContain('usr/lib/own/.cvmfscatalog')
      expect(list.filter((path: string) => path.endsWith('.cvmfscatalog'))).toHaveLength(OURS.length)
    }
    await expectReadBack('tx', flatRel, added)

    // rm and gc through transactions take the nested catalogs away with their root.
    expect((await run(['rm', '--repo', repo.name, 'localhost/nested/tx:1'])).exitCode).toBe(0)
    const gc = await run(['gc', '--repo', repo.name, '--grace-period', '0', '--json'])
    expect(gc.exitCode, gc.stderr).toBe(0)
    expect(JSON.parse(gc.stdout).deleted.map((item: {path: string}) => item.path)).toContain(flatRel)
    expect(await catalogsBelow(flatRel)).toEqual([])
  })

  it('through ingest: the markers travel in the flat root’s tar; gc takes its nested catalogs away with it', async () => {
    const {flatRel, added, calls} = await publish('ingest', ['--ingest'])
    // The flat root's tar (based at .flat/<hh>, or .flat while that is new), with the markers.
    expect(calls[0]).toMatch(new RegExp(`^ingest -t - -b \\.flat(/[0-9a-f]{2})? -k ${repo.name.replaceAll('.', '\\.')} => 0$`))
    expect(calls.filter((call) => call.startsWith('transaction') || call.startsWith('publish'))).toEqual([]) // no xattrs: no transaction
    expect(await catalogsBelow(flatRel)).toEqual(['/', '/usr/lib/own', '/usr/share', '/usr/share/big/a', '/usr/share/big/b'])
    expect(added).toEqual(expect.arrayContaining(OURS))
    await expectReadBack('ingest', flatRel, added)

    expect((await run(['rm', '--repo', repo.name, '--ingest', 'localhost/nested/ingest:1'])).exitCode).toBe(0)
    const gc = await run(['gc', '--repo', repo.name, '--ingest', '--grace-period', '0', '--json'])
    expect(gc.exitCode, gc.stderr).toBe(0)
    expect(JSON.parse(gc.stdout).deleted.map((item: {path: string}) => item.path)).toContain(flatRel)
    expect(await catalogsBelow(flatRel)).toEqual([])
  })

  it('a small image gets its root’s catalog only', async () => {
    const {flatRel, added} = await publish('small', [])
    expect(await catalogsBelow(flatRel)).toEqual(['/'])
    expect(added.filter((path) => path.endsWith('.cvmfscatalog'))).toEqual([])
  })

  it('refuses an image with a symlink named .cvmfscatalog before publishing anything (CernVM-FS’s sync would panic on it)', async () => {
    await repo.clearCalls()
    const before = await repo.server(['list-catalogs', '-x', repo.name])
    const result = await run(['publish', '--repo', repo.name, '--name', 'localhost/nested/hostile:1', `oci:${layout}:hostile`])
    expect(result.exitCode, result.stderr).toBe(4)
    expect(result.stderr).toContain('Code: E_CATALOG_MARKER')
    expect(result.stderr).toContain('symlink named opt/.cvmfscatalog')
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `abort -f ${repo.name} => 0`])
    expect((await repo.server(['list-catalogs', '-x', repo.name])).stdout).toBe(before.stdout)
    expect((await run(['resolve', '--root', repo.root, 'localhost/nested/hostile:1'])).exitCode).toBe(3)
  })
})

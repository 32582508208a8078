/**
 * The ingest backend (`--ingest`): no transaction mount; each change goes out as
 * `cvmfs_server ingest` tar streams (a new flat root as its own nested catalog), and
 * deletions as `ingest -d`. The flat root that arrives through the tar stream must equal
 * what umoci unpacks from the same image (the oracle of publish-oracle.test.ts): modes,
 * owners, hardlinks, symlinks, devices, FIFOs, xattrs (security.capability included),
 * long and non-ASCII names.
 */
import {lstat, mkdtemp, readdir, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli} from '../helpers/cli.js'
import {changeCalls, testRepository, type TestRepository} from '../helpers/cvmfs.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'
import {LONG_NAME, NON_ASCII, trickyImage} from './tricky-images.js'

let repo: TestRepository
let work: string
let layout: string
let ref: string
const unique = `ingest-${Date.now().toString(36)}`
const run = (args: string[]) => cli(args, {env: repo.env})

beforeAll(async () => {
  requireTools('skopeo', 'umoci', 'getfattr', 'setfattr')
  work = await mkdtemp(join(tmpdir(), 'cvmfs-oci-ingest-'))
  repo = await testRepository()
  layout = join(work, 'layout')
  await writeOciLayout(layout, [{tag: 'tricky', image: trickyImage()}])
  ref = await pushLayout(layout, 'tricky', registryAddress(), `${unique}/tricky:1`)
})
afterAll(async () => {
  await repo?.cleanup()
  await rm(work, {recursive: true, force: true})
})

describe('publish --repo --ingest', () => {
  it('sends the flat root as a tar stream into its own nested catalog, exactly as umoci unpacks the image', async () => {
    const result = await run(['publish', '--repo', repo.name, '--ingest', '--tls-verify=false', '--json', ref])
    expect(result.exitCode, result.stderr).toBe(0)
    const published = JSON.parse(result.stdout).images[0]
    const hex = (published.configDigest as string).slice(7)
    const calls = changeCalls(await repo.calls())
    expect(calls[0]).toBe(`ingest --catalog -t - -b .flat/${hex.slice(0, 2)}/${hex} -k ${repo.name} => 0`)
    // Then the rest by area, flat roots before metadata before the public link; never a transaction.
    expect(calls).toEqual(expect.arrayContaining([`ingest -t - -b .metadata -k ${repo.name} => 0`, `ingest -t - -b ${registryAddress()} -k ${repo.name} => 0`]))
    expect(calls.indexOf(`ingest -t - -b .metadata -k ${repo.name} => 0`)).toBeLessThan(calls.indexOf(`ingest -t - -b ${registryAddress()} -k ${repo.name} => 0`))
    expect(calls.filter((c) => c.startsWith('transaction'))).toEqual([])

    const rootfs = (await run(['resolve', '--root', repo.root, ref])).stdout.trim()
    await lstat(join(rootfs, '.cvmfscatalog'))
    await lstat(join(repo.root, '.flat', '.cvmfscatalog'))
    const added = new Set<string>(published.added)
    const ours = await snapshotTree(rootfs, {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
    const theirs = await snapshotTree(await umociUnpack(layout, 'tricky', join(work, 'bundle')))
    for (const tree of [ours, theirs]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs
    expect(diffTrees(theirs, ours)).toEqual([])
    expect(ours.get('caps/ping')?.xattrs['security.capability']).toMatch(/^0[01]000002/)
    expect(ours.get('bin2/c')?.hardlink).toBe(ours.get('usr/bin/tool')?.hardlink)
    expect(ours.get('usr/bin/wall')?.mode).toBe(0o2755)
    expect(ours.get('dev/null')).toMatchObject({type: 'char', rdev: '1:3'})
    expect(ours.get(LONG_NAME)?.type).toBe('file')
    expect(ours.get(NON_ASCII)?.type).toBe('file')

    await repo.clearCalls()
    expect((await run(['publish', '--repo', repo.name, '--ingest', '--tls-verify=false', ref])).stderr).toContain('unchanged')
    expect(changeCalls(await repo.calls())).toEqual([])
  })

  it('sends nothing when the image fails verification, and leaves no scratch behind', async () => {
    const bad = join(work, 'bad')
    await writeOciLayout(bad, [{tag: '1', image: {layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/../../x', content: 'x'}]}]}}])
    const before = await snapshotTree(repo.root)
    await repo.clearCalls()
    const result = await run(['publish', '--repo', repo.name, '--ingest', '--name', `example.org/${unique}/bad:1`, `oci:${bad}:1`])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toContain('E_HOSTILE_TRAVERSAL')
    expect(changeCalls(await repo.calls())).toEqual([])
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
    expect((await readdir(join(repo.env.CVMFS_OCI_STATE_DIR ?? '/var/lib/cvmfs-oci', repo.name))).filter((e) => e.startsWith('ingest.'))).toEqual([])
  })

  it('removes with ingest -d, and gc deletes the flat root the same way', async () => {
    const rootfs = (await run(['resolve', '--root', repo.root, ref])).stdout.trim()
    await repo.clearCalls()
    expect((await run(['rm', '--repo', repo.name, '--ingest', ref])).exitCode).toBe(0)
    expect(changeCalls(await repo.calls())[0]).toMatch(new RegExp(`^ingest -d \\S+ -d \\S+.* ${repo.name.replaceAll('.', '\\.')} => 0$`))
    await repo.clearCalls()
    const gc = await run(['gc', '--repo', repo.name, '--ingest', '--grace-period', '0'])
    expect(gc.exitCode, gc.stderr).toBe(0)
    expect(changeCalls(await repo.calls())[0]).toMatch(/^ingest -d \.flat\/\S+ /)
    await expect(lstat(rootfs)).rejects.toThrow()
  })
})

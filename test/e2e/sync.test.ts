/**
 * `cvmfs-oci sync WISHLIST` against the real registry: a tag pattern expanded from the
 * registry's tag list, one broken image that fails without stopping the others, one
 * transaction per new image and none for unchanged ones (read from the cvmfs_server call
 * log), the plan of --dry-run, --json and --timestamps, and a wish list whose mistakes
 * are reported with their line. Then the same commands on a directory (--root).
 */
import {lstat, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli} from '../helpers/cli.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {versionImage, type ImageSpec} from '../helpers/oci-layout.js'
import {pushImage, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const repo = testRepository('sync')
const work = useTempDir('cvmfs-oci-sync-', 'all')
let registry: string
const unique = `sync-${Date.now().toString(36)}`

const small = versionImage
const push = (spec: ImageSpec, repoTag: string) => pushImage(work(), spec, repoTag)

/** oclif wraps error messages: undo it (and its extra spaces) before looking for a phrase. */
const oneLine = (text: string) => text.replace(/\n ›/g, ' ').replace(/\s+/g, ' ')

async function wishlist(file: string, repository: string, inputs: string[]): Promise<string> {
  const path = join(work(), file)
  const lines = ['version: 1', 'user: cvmfsunpacker', `cvmfs_repo: '${repository}'`, "output_format: 'https://gitlab-registry.cern.ch/unpacked/sync/$(image)'", 'input:']
  await writeFile(path, [...lines, ...inputs.map((input) => `  - '${input}'`), ''].join('\n'))
  return path
}

beforeAll(async () => {
  requireTools('skopeo')
  registry = registryAddress()
  await repo.start()
  for (const tag of ['1.0', '1.1', '2.0']) await push(small(`tool ${tag}`), `${unique}/tool:${tag}`)
  await push(small('other'), `${unique}/other:latest`)
  const broken = small('broken')
  broken.layers[0]!.diffIdOverride = `sha256:${'0'.repeat(64)}`
  await push(broken, `${unique}/broken:1`)
})
afterAll(async () => {
  await repo.cleanup()
})

describe(`sync --repo, into the real stratum-0 ${repo.name}`, () => {
  it('expands tag patterns, survives a broken image, and costs one transaction per new image, none for unchanged ones', async () => {
    const list = await wishlist('wishlist.yaml', repo.name, [`http://${registry}/${unique}/tool:1.*`, `http://${registry}/${unique}/broken:1`, `http://${registry}/${unique}/other:latest`])
    const run = (...args: string[]) => cli(['sync', ...args, list], {env: repo.env})

    const plan = await run('--dry-run')
    expect(plan.exitCode, plan.stderr).toBe(0)
    for (const tag of ['tool:1.0', 'tool:1.1', 'broken:1', 'other:latest']) expect(plan.stderr).toMatch(new RegExp(`would publish +${registry}/${unique}/${tag.replace('.', '\\.')} `))
    expect(plan.stderr).not.toContain('tool:2.0')
    expect(changeCalls(await repo.calls())).toEqual([])

    const first = await run('--timestamps')
    expect(first.exitCode).toBe(4)
    const lines = first.stderr.split('\n').filter((l) => l !== '')
    expect(lines.filter((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z published +/.test(l))).toHaveLength(3)
    expect(first.stderr).toMatch(/^\S+Z error: .*broken:1 \(line 7\): .*diffid mismatch/m)
    expect(first.stderr).toMatch(/published 3, linked 0, unchanged 0, failed 1 .*broken:1/)
    const t = `transaction ${repo.name} => 0`
    const p = `publish ${repo.name} => 0`
    const a = `abort -f ${repo.name} => 0`
    expect(changeCalls(await repo.calls())).toEqual([t, p, t, p, t, a, t, p])

    await repo.clearCalls()
    const second = await run('--json')
    expect(second.exitCode).toBe(4)
    const summary = JSON.parse(second.stdout)
    expect(summary.counts).toEqual({published: 0, linked: 0, unchanged: 3, failed: 1})
    expect(summary.failed).toEqual([expect.objectContaining({input: `${registry}/${unique}/broken:1`, line: 7, error: expect.objectContaining({code: 'E_DIFFID_MISMATCH', exitCode: 4})})])
    expect(summary.images.map((i: {reference: string}) => i.reference)).toEqual([`${registry}/${unique}/tool:1.0`, `${registry}/${unique}/tool:1.1`, `${registry}/${unique}/other:latest`])
    // The broken image tried again; nothing else opened a transaction.
    expect(changeCalls(await repo.calls())).toEqual([t, a])
    for (const root of [repo.root, await repo.client()]) {
      for (const tag of ['tool:1.0', 'tool:1.1', 'other:latest']) {
        expect((await cli(['resolve', '--root', root, `${registry}/${unique}/${tag}`])).exitCode, `${root}: ${tag}`).toBe(0)
      }
    }
  })

  it('reports every mistake of a wish list with its line, before touching anything', async () => {
    await repo.clearCalls()
    const path = join(work(), 'bad.yaml')
    await writeFile(path, ['version: 2', "cvmfs_repo: 'x.local'", 'imput: []', 'input:', "  - 'https://registry.example.org/ok:1'", "  - 'ftp://registry.example.org/x:1'", "  - 'https://registry.example.org/UPPER:1'", ''].join('\n'))
    const result = await cli(['sync', '--repo', repo.name, path], {env: repo.env})
    expect(result.exitCode).toBe(2)
    const text = oneLine(result.stderr)
    expect(text).toContain('E_BAD_WISHLIST')
    expect(text).toContain(`${path}:1:10: /version: must be 1`)
    expect(text).toContain(`${path}:3:8: /imput: is not allowed here`)
    const syntax = join(work(), 'syntax.yaml')
    await writeFile(syntax, 'version: 1\ninput: [\n')
    expect((await cli(['sync', '--repo', repo.name, syntax], {env: repo.env})).stderr).toMatch(new RegExp(`${syntax.replaceAll('.', '\\.')}:\\d+:\\d+: `))
    const entries = join(work(), 'entries.yaml')
    await writeFile(entries, ['version: 1', "cvmfs_repo: 'x.local'", 'input:', "  - 'ftp://registry.example.org/x:1'", "  - 'https://registry.example.org/UPPER:1'", ''].join('\n'))
    const bad = oneLine((await cli(['sync', '--repo', repo.name, entries], {env: repo.env})).stderr)
    expect(bad).toContain(`${entries}:4:5: /input/0: unsupported scheme ftp://`)
    expect(bad).toContain(`${entries}:5:5: /input/1: invalid image reference`)
    expect(changeCalls(await repo.calls())).toEqual([])
  })
})

describe('sync, rm and gc --root (a directory)', () => {
  it('publishes, removes and collects the same way without CVMFS', async () => {
    const root = join(work(), 'dir-repo')
    const list = await wishlist('dir.yaml', 'ignored.local', [`http://${registry}/${unique}/tool:2.*`, `http://${registry}/${unique}/other:latest`])
    const synced = JSON.parse((await cli(['sync', '--root', root, '--json', list])).stdout)
    expect(synced.counts).toEqual({published: 2, linked: 0, unchanged: 0, failed: 0})
    const flat = synced.images[0].path as string
    expect((await cli(['rm', '--root', root, `${registry}/${unique}/tool:2.0`])).exitCode).toBe(0)
    await lstat(flat)
    const gc = JSON.parse((await cli(['gc', '--root', root, '--grace-period', '0', '--json'])).stdout)
    expect(gc.deleted.map((i: {kind: string}) => i.kind).sort()).toEqual(['blob', 'blob', 'chain', 'flat', 'flat-record'])
    await expect(lstat(flat)).rejects.toThrow()
    expect(await readdir(join(root, registry, unique))).toEqual(['other:latest'])
    // No bookkeeping left in the directory when nothing waits for the grace period.
    expect((await readdir(root)).sort()).toEqual(['.flat', '.metadata', 'podmanStore', registry].sort())
  })
})

/**
 * The oracle: for tricky images, the flat root `publish` writes equals the rootfs
 * that umoci (an independent unpacker) makes of the same image — content, type,
 * mode, owner, link targets, hardlinks, xattrs, mtimes of non-directories — apart
 * from the mount points the publisher adds.
 */
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {envScript} from '../../src/layout/singularity.js'
import {cli, cliOk} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'
import {LONG_NAME, NON_ASCII, trickyImage} from './tricky-images.js'

describe('publish equals umoci unpack', () => {
  const work = useTempDir('cvmfs-oci-oracle-', 'all')
  beforeAll(async () => {
    requireTools('skopeo', 'umoci', 'getfattr', 'setfattr')
  })

  it('merges whiteouts, opaque dirs, hardlinks, type changes, special bits, xattrs and odd names as umoci does', async () => {
    const layout = join(work(), 'layout')
    const [written] = await writeOciLayout(layout, [{tag: 'tricky', image: trickyImage()}])
    const ref = await pushLayout(layout, 'tricky', registryAddress(), 'oracle/tricky:1')
    const repo = join(work(), 'repo')
    const out = JSON.parse(await cliOk(['publish', '--root', repo, '--tls-verify=false', '--json', ref]))
    const published = out.images[0]
    expect(published.status).toBe('published')
    expect(published.configDigest).toBe(written!.configDigest)

    // What publish adds (mount points, apptainer's .singularity.d files) is listed path by path.
    expect(published.added).toEqual(expect.arrayContaining(['.singularity.d', '.singularity.d/env/10-docker2singularity.sh', '.singularity.d/runscript']))
    const added = new Set<string>(published.added)
    const ours = await snapshotTree(published.path, {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
    const theirs = await snapshotTree(await umociUnpack(layout, 'tricky', join(work(), 'bundle')))
    // Directory mtimes differ legitimately (adding mount points touches their parents).
    for (const tree of [ours, theirs]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs

    expect(diffTrees(theirs, ours)).toEqual([])

    // The oracle only proves equality; these prove the cases are really in the image.
    expect(ours.get('etc/keep')?.sha256).toBeDefined()
    expect(ours.has('etc/gone')).toBe(false)
    expect(ours.has('opq/a') || ours.has('opq/sub')).toBe(false)
    expect(ours.get('opq/new')?.type).toBe('file')
    expect(ours.get('usr/bin/tool-link')?.hardlink).toBe(ours.get('usr/bin/tool')?.hardlink)
    expect(ours.get('bin2/c')?.hardlink).toBe(ours.get('usr/bin/tool')?.hardlink)
    expect(ours.get('d2f')?.type).toBe('file')
    expect(ours.get('f2d')?.type).toBe('dir')
    expect(ours.has('srv')).toBe(false)
    expect(ours.has('usr/bin/su')).toBe(false)
    expect(ours.get('usr/bin/wall')?.mode).toBe(0o2755)
    expect(ours.get('tmp')?.mode).toBe(0o1777)
    expect(ours.get('caps/ping')?.xattrs['security.capability']).toMatch(/^0[01]000002/)
    expect(ours.get('etc/noted')?.xattrs['user.note']).toBe(Buffer.from('hello').toString('hex'))
    expect(ours.get('etc/keep')?.xattrs['user.lost']).toBeUndefined()
    expect(ours.get(LONG_NAME)?.type).toBe('file')
    expect(ours.get(NON_ASCII)?.type).toBe('file')
    expect(ours.get('home/user/secret')).toMatchObject({uid: 1000, gid: 1000, mode: 0o600})
    expect(ours.get('dev/null')).toMatchObject({type: 'char', rdev: '1:3'})
    expect(ours.get('run/pipe')?.type).toBe('fifo')
  })
})

describe('an image on a published base', () => {
  const work = useTempDir('cvmfs-oci-base-', 'all')
  beforeAll(async () => {
    requireTools('skopeo', 'umoci', 'getfattr', 'setfattr')
  })

  it('starts from the base root, equals umoci unpack, and leaves the base untouched', async () => {
    const tricky = trickyImage()
    const base = {...tricky, layers: tricky.layers.slice(0, 3)}
    // Same layers as the app, another config: no layer needs applying at all.
    const twin = {...tricky, config: {...tricky.config, Env: ['TWIN=1']}}
    const layout = join(work(), 'layout')
    await writeOciLayout(layout, [
      {tag: 'base', image: base},
      {tag: 'app', image: tricky},
      {tag: 'twin', image: twin},
    ])
    const registry = registryAddress()
    // One after another: Distribution answers 500 to a push that meets another one uploading
    // the same blobs into the same repository (seen in CI: "trying to reuse blob … 500").
    const refs: string[] = []
    for (const tag of ['base', 'app', 'twin']) refs.push(await pushLayout(layout, tag, registry, `oracle/onbase:${tag}`))
    const repo = join(work(), 'repo')
    const publish = async (ref: string) => {
      const result = await cli(['publish', '--root', repo, '--tls-verify=false', '--json', ref])
      expect(result.exitCode, result.stderr).toBe(0)
      return {out: JSON.parse(result.stdout).images[0], log: result.stderr}
    }
    const baseRun = await publish(refs[0]!)
    const baseBefore = await snapshotTree(baseRun.out.path)

    const app = await publish(refs[1]!)
    expect(app.log).toContain('holds 3 of its 4 layer(s)')
    expect(app.log).toContain('unpacking 1 layer(s)')
    const twinRun = await publish(refs[2]!)
    expect(twinRun.log).toContain('holds 4 of its 4 layer(s)')
    expect(twinRun.log).toContain('unpacking 0 layer(s)')

    const theirs = await snapshotTree(await umociUnpack(layout, 'app', join(work(), 'bundle')))
    for (const run of [app, twinRun]) {
      const added = new Set<string>(run.out.added)
      const ours = await snapshotTree(run.out.path, {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
      for (const tree of [ours, theirs]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs
      expect(diffTrees(theirs, ours)).toEqual([])
    }
    expect(diffTrees(baseBefore, await snapshotTree(baseRun.out.path))).toEqual([])
    // The size is of the tree, however it was built.
    const scratch = await cli(['publish', '--root', join(work(), 'scratch'), '--tls-verify=false', '--json', refs[1]!])
    expect(JSON.parse(scratch.stdout).images[0].size).toBe(app.out.size)
    // The twin's root differs only in apptainer's env script, written from its own Env.
    const envBytes = (image: typeof tricky) => Buffer.byteLength(envScript(image.config?.Env))
    expect(twinRun.out.size - envBytes(twin)).toBe(app.out.size - envBytes(tricky))
    expect(envBytes(twin)).not.toBe(envBytes(tricky))
  })
})

/**
 * An image on a published base downloads only the layers the merge needs: skopeo still
 * copies it (registries.conf, credentials and policy apply as before), but the blobs
 * the base root already holds are never fetched. What was fetched is read from the
 * registry's own access log; what was built is compared with umoci's unpack.
 */
import {createHash} from 'node:crypto'
import {mkdtemp, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli} from '../helpers/cli.js'
import {exec, execBuffer} from '../helpers/exec.js'
import {archData} from '../helpers/multiarch-images.js'
import {writeOciIndexLayout, writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {pushLayout} from '../helpers/registry.js'
import {blobsServed, startRegistryProcess, type RegistryProcess} from '../helpers/registry-process.js'
import type {TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'
import {trickyImage} from './tricky-images.js'

describe('republish on a published base', () => {
  const work = useTempDir('cvmfs-oci-republish-', 'all')
  let registry: RegistryProcess
  let layout: string
  /** The layer digests of each tag as the registry holds them (skopeo compresses an uncompressed layer on push). */
  let layers: Record<string, string[]>
  beforeAll(async () => {
    requireTools('skopeo', 'umoci', 'docker-registry', 'getfattr', 'setfattr')
    registry = await startRegistryProcess(await mkdtemp(join(work(), 'registry-')), {accessLog: true})
    const tricky = trickyImage()
    const base = {...tricky, layers: tricky.layers.slice(0, 3)}
    // The top layer of `rep` is the (empty) third layer again: the same blob, below in the
    // base and needed on top, must still be fetched.
    const rep = {...tricky, layers: [...base.layers, tricky.layers[2]!], config: {...tricky.config, Env: ['REP=1']}}
    layout = join(work(), 'layout')
    await writeOciLayout(layout, [
      {tag: 'base', image: base},
      {tag: 'app', image: tricky},
      {tag: 'rep', image: rep},
    ])
    for (const tag of ['base', 'app', 'rep']) await pushLayout(layout, tag, registry.address, `onbase/img:${tag}`)
    // The same app as a Docker schema 2 manifest (same blobs, another manifest digest).
    await exec('skopeo', ['--insecure-policy', 'copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:app`, `docker://${registry.address}/onbase/docker:app`])
    layers = {}
    for (const ref of ['img:base', 'img:app', 'img:rep', 'docker:app']) {
      const manifest = JSON.parse((await inspectRaw(`${registry.address}/onbase/${ref}`)).toString()) as {layers: {digest: string}[]}
      layers[ref] = manifest.layers.map((layer) => layer.digest)
    }
  })
  afterAll(async () => {
    await registry?.stop()
  })

  async function inspectRaw(ref: string): Promise<Buffer> {
    return execBuffer('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
  }

  /** Publish `ref` into `repo`; the blobs the registry served meanwhile, and the result. */
  async function publish(repo: string, ref: string) {
    const before = (await registry.settledOutput()).length
    const result = await cli(['publish', '--root', repo, '--tls-verify=false', '--json', ref])
    expect(result.exitCode, result.stderr).toBe(0)
    const served = new Set(blobsServed((await registry.settledOutput()).slice(before)))
    return {out: JSON.parse(result.stdout).images[0], log: result.stderr, served}
  }

  async function expectUmociTree(tag: string, out: {path: string; added: string[]}) {
    const added = new Set<string>(out.added)
    const ours = await snapshotTree(out.path, {exclude: (rel) => rel === '.cvmfscatalog' || added.has(rel)})
    const theirs = await snapshotTree(await umociUnpack(layout, tag, await mkdtemp(join(work(), `bundle-${tag}-`))))
    for (const tree of [ours, theirs]) for (const info of tree.values()) if (info.type === 'dir') delete info.mtimeMs
    expect(diffTrees(theirs, ours)).toEqual([])
  }

  it('fetches only the layers above the base, and merges what umoci unpacks', async () => {
    const repo = join(work(), 'repo')
    const baseRun = await publish(repo, `${registry.address}/onbase/img:base`)
    // A first publish fetches every layer (the check below could not fail otherwise).
    for (const digest of layers['img:base']!) expect(baseRun.served).toContain(digest)

    const app = await publish(repo, `${registry.address}/onbase/img:app`)
    expect(app.log).toContain('holds 3 of its 4 layer(s)')
    const [l0, l1, l2, l3] = layers['img:app']!
    expect(layers['img:base']).toEqual([l0, l1, l2])
    expect(app.served).toContain(l3)
    for (const digest of [l0, l1, l2]) expect(app.served).not.toContain(digest)
    await expectUmociTree('app', app.out)
    // A directory's attributes are its own (not a shared inode's): copied from the base.
    expect((await snapshotTree(app.out.path)).get('home/user')?.xattrs['user.dir']).toBe(Buffer.from('on a directory').toString('hex'))

    const rep = await publish(repo, `${registry.address}/onbase/img:rep`)
    expect(rep.log).toContain('holds 3 of its 4 layer(s)')
    expect(layers['img:rep']).toEqual([l0, l1, l2, l2])
    expect(rep.served).toContain(l2)
    for (const digest of [l0, l1]) expect(rep.served).not.toContain(digest)
    await expectUmociTree('rep', rep.out)
  })

  it('keeps a Docker schema 2 manifest byte for byte while skipping the base layers', async () => {
    const repo = join(work(), 'repo-docker')
    await publish(repo, `${registry.address}/onbase/img:base`)
    const ref = `${registry.address}/onbase/docker:app`
    const raw = await inspectRaw(ref)
    const docker = await publish(repo, ref)
    expect(JSON.parse(raw.toString()).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')
    expect(docker.out.manifestDigest).toBe(`sha256:${createHash('sha256').update(raw).digest('hex')}`)
    const oci = await inspectRaw(`${registry.address}/onbase/img:app`)
    expect(docker.out.manifestDigest).not.toBe(`sha256:${createHash('sha256').update(oci).digest('hex')}`)
    const [l0, l1, l2, l3] = layers['docker:app']!
    expect(layers['img:app']).toEqual([l0, l1, l2, l3])
    expect(docker.served).toContain(l3)
    for (const digest of [l0, l1, l2]) expect(docker.served).not.toContain(digest)
    await expectUmociTree('app', docker.out)
  })

  it("asks for a new name's config beside its manifest, once; for a name published before, only after it", async () => {
    const repo = join(work(), 'repo-requests')
    const debug = async (args: string[]) => {
      const before = (await registry.settledOutput()).length
      const result = await cli(['publish', '--root', repo, '--tls-verify=false', '--debug', ...args])
      expect(result.exitCode, result.stderr).toBe(0)
      const lines = result.stderr.split('\n')
      const at = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line))
      const served = blobsServed((await registry.settledOutput()).slice(before))
      return {log: result.stderr, configAt: at(/\$ skopeo .*inspect --config/), manifestAt: at(/: manifest sha256:[0-9a-f]{64} \(\d+ bytes\)/), served}
    }
    const configDigest = async (tag: string) => JSON.parse((await inspectRaw(`${registry.address}/onbase/img:${tag}`)).toString()).config.digest as string

    // Not published yet: the config's request starts before the manifest is in.
    const first = await debug([`${registry.address}/onbase/img:base`])
    expect(first.configAt, first.log).toBeGreaterThanOrEqual(0)
    expect(first.manifestAt, first.log).toBeGreaterThan(first.configAt)
    expect(first.log.match(/inspect --config/g), first.log).toHaveLength(1)
    const baseConfig = await configDigest('base')
    // (skopeo copy fetches it again; that request is skopeo's own.)
    expect(first.served).toContain(baseConfig)

    // Unchanged: no config request at all.
    const again = await debug([`${registry.address}/onbase/img:base`])
    expect(again.log).toContain('unchanged')
    expect(again.configAt, again.log).toBe(-1)
    expect(again.served).not.toContain(baseConfig)

    // The name moves to another image: asked for after the manifest, as before.
    const moved = await debug(['--name', `${registry.address}/onbase/img:base`, `${registry.address}/onbase/img:app`])
    expect(moved.log).toContain('holds 3 of its 4 layer(s)')
    expect(moved.manifestAt, moved.log).toBeGreaterThanOrEqual(0)
    expect(moved.configAt, moved.log).toBeGreaterThan(moved.manifestAt)
    expect(moved.log.match(/inspect --config/g), moved.log).toHaveLength(1)
    expect(moved.served).toContain(await configDigest('app'))
  })

  it('fetches only the layers above the base for each platform of a multi-platform image', async () => {
    const platformImage = (arch: string, extra: TarEntry[][]): ImageSpec => ({
      layers: [{entries: archData(arch)}, ...extra.map((entries) => ({entries}))],
      architecture: arch,
      config: {Cmd: ['/bin/sh']},
    })
    const top = (arch: string): TarEntry[] => [{name: 'app/', type: 'directory'}, {name: 'app/version', content: `2 on ${arch}\n`}]
    const multi = join(work(), 'multi')
    await writeOciIndexLayout(multi, 'v1', [platformImage('amd64', []), platformImage('arm64', [])])
    await writeOciIndexLayout(multi, 'v2', [platformImage('amd64', [top('amd64')]), platformImage('arm64', [top('arm64')])])
    const v1 = await pushLayout(multi, 'v1', registry.address, 'onbase/multi:v1')
    const v2 = await pushLayout(multi, 'v2', registry.address, 'onbase/multi:v2')
    const held: string[] = []
    const tops: string[] = []
    for (const arch of ['amd64', 'arm64']) {
      const manifest = JSON.parse((await execBuffer('skopeo', ['--override-arch', arch, 'inspect', '--raw', '--tls-verify=false', `docker://${v2}`])).toString())
      const instance = JSON.parse((await inspectRaw(`${registry.address}/onbase/multi@${manifest.manifests.find((m: {platform: {architecture: string}}) => m.platform.architecture === arch).digest}`)).toString())
      held.push(instance.layers[0].digest)
      tops.push(instance.layers[1].digest)
    }
    const repo = join(work(), 'repo-multi')
    const run = async (ref: string) => {
      const before = (await registry.settledOutput()).length
      const result = await cli(['publish', '--root', repo, '--tls-verify=false', '--platform', 'all', '--json', ref])
      expect(result.exitCode, result.stderr).toBe(0)
      return {out: JSON.parse(result.stdout).images[0], log: result.stderr, served: new Set(blobsServed((await registry.settledOutput()).slice(before)))}
    }
    const first = await run(v1)
    for (const digest of held) expect(first.served).toContain(digest)
    const second = await run(v2)
    expect(second.log.match(/holds 1 of its 2 layer\(s\)/g)).toHaveLength(2)
    for (const digest of tops) expect(second.served).toContain(digest)
    for (const digest of held) expect(second.served).not.toContain(digest)
    for (const platform of second.out.platforms) {
      expect(await readFile(join(platform.path, 'app', 'version'), 'utf8')).toBe(`2 on ${platform.arch.split(':')[0]}\n`)
      expect(await readFile(join(platform.path, 'data', 'arch'), 'utf8')).toBe(`${platform.arch.split(':')[0]}\n`)
    }
  })
})

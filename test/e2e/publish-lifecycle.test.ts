/**
 * publish end to end against a real registry and real skopeo: the layout it
 * writes, idempotence, atomicity when killed, every source transport, platform
 * choice, and the errors a user meets.
 */
import {spawn} from 'node:child_process'
import {lstat, mkdir, readdir, readFile, readlink, realpath, symlink} from 'node:fs/promises'
import {join} from 'node:path'
import {randomBytes} from 'node:crypto'
import * as zlib from 'node:zlib'

import {beforeAll, describe, expect, it} from 'vitest'

import {BIN, cli, cliOk} from '../helpers/cli.js'
import {exec} from '../helpers/exec.js'
import {writeOciIndexLayout, writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

function small(content: string, extra: ImageSpec['layers'] = []): ImageSpec {
  return {
    config: {Env: ['A=1'], Cmd: ['/bin/true']},
    layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/hosts', content: '# the image own hosts\n'}, {name: 'etc/version', content}]}, ...extra],
  }
}

const work = useTempDir('cvmfs-oci-life-', 'all')
let registry: string
let counter = 0

async function pushed(image: ImageSpec, repoTag: string): Promise<{ref: string; configDigest: string; manifestDigest: string; layout: string}> {
  const layout = join(work(), `layout-${++counter}`)
  const [written] = await writeOciLayout(layout, [{tag: 't', image}])
  const ref = await pushLayout(layout, 't', registry, repoTag)
  return {ref, configDigest: written!.configDigest, manifestDigest: written!.manifestDigest, layout}
}

async function publishJson(root: string, ...args: string[]) {
  const out = await cliOk(['publish', '--root', root, '--tls-verify=false', '--json', ...args])
  return JSON.parse(out) as {images: {status: string; configDigest: string; manifestDigest: string; path: string; name: string; added: string[]}[]}
}

/**
 * A repository `<what>-repo` with a small image published as `life/<what>:1`, and a
 * new image of that name pushed, big enough that unpacking takes a while (24 files of
 * 4 MiB of incompressible data); `before`: the repository's tree.
 */
async function oldAndBig(what: string) {
  const root = join(work(), `${what}-repo`)
  const v1 = await pushed(small('old'), `life/${what}:1`)
  await publishJson(root, v1.ref)
  const before = await snapshotTree(root)
  const entries = Array.from({length: 24}, (_, i) => ({name: `data/blob${i}`, content: randomBytes(4 << 20)}))
  const v2 = await pushed(small('new', [{entries, compression: 'gzip'}]), `life/${what}:1`)
  return {root, v1, v2, before}
}

/**
 * Wait until the publish of process `pid` into `root` is unpacking: its own staging
 * directory (a killed run's may be there too) holds a few of `data/`'s files.
 */
async function unpacking(root: string, pid: number): Promise<void> {
  const staging = join(root, '.cvmfs-oci', 'staging')
  const deadline = Date.now() + 60_000
  for (;;) {
    const own = (await readdir(staging).catch(() => [] as string[])).find((name) => name.endsWith(`.${pid}`))
    if (own && (await readdir(join(staging, own, 'data')).catch(() => [] as string[])).length > 2) return
    if (Date.now() > deadline) throw new Error('publish never started unpacking')
    await new Promise((r) => setTimeout(r, 20))
  }
}

beforeAll(async () => {
  requireTools('skopeo')
  registry = registryAddress()
})

describe('the layout publish writes', () => {
  it('writes the flat root, DUCC metadata, original bytes, catalogs, mount points and a relative link', async () => {
    const root = join(work(), 'layout-repo')
    const img = await pushed(small('1'), 'life/layout:1.0')
    const {images} = await publishJson(root, img.ref)
    const hex = img.configDigest.slice(7)
    const name = `${registry}/life/layout:1.0`
    expect(images[0]).toMatchObject({status: 'published', name, configDigest: img.configDigest, manifestDigest: img.manifestDigest})
    expect(images[0]!.path).toBe(join(root, '.flat', hex.slice(0, 2), hex))

    // One ../ per level of <registry>/<repository>.
    expect(await readlink(join(root, name))).toBe(`../../.flat/${hex.slice(0, 2)}/${hex}`)
    const ducc = JSON.parse(await readFile(join(root, '.metadata', name, 'manifest.json'), 'utf8'))
    expect(Object.keys(ducc)).toEqual(['SchemaVersion', 'MediaType', 'Config', 'Layers'])
    expect(ducc.Config.Digest).toBe(img.configDigest)
    // Original bytes, content-addressed, for the hook and the podman store.
    const manifestBytes = await readFile(join(root, '.metadata/.blobs/sha256', img.manifestDigest.slice(7)))
    expect(manifestBytes.equals(await readFile(join(img.layout, 'blobs/sha256', img.manifestDigest.slice(7))))).toBe(true)
    await lstat(join(root, '.metadata/.blobs/sha256', hex))
    // Nested catalogs where DUCC puts them.
    await lstat(join(root, '.flat/.cvmfscatalog'))
    await lstat(join(images[0]!.path, '.cvmfscatalog'))
    // Mount points added, the image's own /etc/hosts untouched.
    expect(images[0]!.added).toEqual(expect.arrayContaining(['proc', 'sys', 'dev', 'tmp', 'etc/resolv.conf', 'etc/mtab', 'run/.containerenv']))
    expect(images[0]!.added).not.toContain('etc/hosts')
    expect(await readFile(join(images[0]!.path, 'etc/hosts'), 'utf8')).toBe('# the image own hosts\n')
    expect((await lstat(join(images[0]!.path, 'tmp'))).mode & 0o7777).toBe(0o1777)
    // No bookkeeping left behind.
    expect((await readdir(root)).sort()).toEqual(['.flat', '.metadata', 'podmanStore', registry].sort())

    expect((await cliOk(['resolve', '--root', root, `${registry}/life/layout:1.0`])).trim()).toBe(await realpath(images[0]!.path))
    const listed = JSON.parse(await cliOk(['list', '--root', root, '--json']))
    expect(listed.roots[0].images[0]).toMatchObject({reference: `${registry}/life/layout:1.0`, configDigest: img.configDigest})
  })

  it('publishes Docker Hub names under registry.hub.docker.com and resolves every spelling of them', async () => {
    const root = join(work(), 'hub-repo')
    const layout = join(work(), 'hub-layout')
    const [written] = await writeOciLayout(layout, [{tag: '22.04', image: small('hub')}])
    await publishJson(root, '--name', 'docker.io/library/ubuntu:22.04', `oci:${layout}:22.04`)
    const hex = written!.configDigest.slice(7)
    expect(await readlink(join(root, 'registry.hub.docker.com/library/ubuntu:22.04'))).toBe(`../../.flat/${hex.slice(0, 2)}/${hex}`)
    for (const spelling of ['ubuntu:22.04', 'docker.io/ubuntu:22.04', 'docker.io/library/ubuntu:22.04', 'index.docker.io/library/ubuntu:22.04', 'registry.hub.docker.com/library/ubuntu:22.04']) {
      expect((await cliOk(['resolve', '--root', root, spelling])).trim(), spelling).toBe(join(await realpath(root), '.flat', hex.slice(0, 2), hex))
    }
    const missing = await cli(['resolve', '--root', root, 'ubuntu:24.04'])
    expect(missing.exitCode).toBe(3)
    expect(missing.stderr).toContain(root)
    expect(missing.stderr).toContain('22.04')
  })

  it('resolves image IDs as podman does, never as docker.io/library/<hex>', async () => {
    const root = join(work(), 'id-repo')
    const a = await pushed(small('by ID'), 'life/id:a')
    const b = await pushed(small('named like an ID'), 'life/id:b')
    const hexA = a.configDigest.slice(7)
    await publishJson(root, a.ref)
    // A name that is A's ID as a Docker Hub repository, on image B: what a bare ID used to resolve to.
    const named = await publishJson(root, '--name', `docker.io/library/${hexA}:latest`, `oci:${b.layout}:t`)
    const flatA = join(await realpath(root), '.flat', hexA.slice(0, 2), hexA)
    expect(named.images[0]!.path).not.toBe(flatA)
    for (const id of [hexA, a.configDigest, hexA.slice(0, 12)]) {
      const result = await cli(['resolve', '--root', root, id])
      expect(result.exitCode, `${id}: ${result.stderr}`).toBe(0)
      expect(result.stdout, id).toBe(`${flatA}\n`)
    }
    const none = await cli(['resolve', '--root', root, `sha256:${'0'.repeat(64)}`])
    expect(none.exitCode).toBe(3)
    expect(none.stderr).toContain(`no image ID is ${'0'.repeat(64)}`)
    const short = await cli(['resolve', '--root', root, `sha256:${hexA.slice(0, 12)}`])
    expect(short.exitCode).toBe(2)
    expect(short.stderr).toContain('64 hex digits')
    // Nor does any other command take a bare ID as a name.
    const refused = await cli(['publish', '--root', root, '--tls-verify=false', '--name', hexA, `oci:${b.layout}:t`])
    const rm = await cli(['rm', '--root', root, hexA])
    for (const result of [refused, rm]) {
      expect(result.exitCode).toBe(2)
      // oclif wraps its error lines (" ›   "): join them first.
      expect(result.stderr.replace(/\s*\n ›\s*/g, ' ')).toContain('cannot specify 64-byte hexadecimal strings')
    }
  })

  it('publishes a reference given by digest as <repository>:sha256:<hex>', async () => {
    const root = join(work(), 'digest-repo')
    const img = await pushed(small('by digest'), 'life/digest:1')
    const byDigest = `${registry}/life/digest@${img.manifestDigest}`
    await publishJson(root, byDigest)
    await lstat(join(root, `${registry}/life/digest:${img.manifestDigest}`))
    expect((await cliOk(['resolve', '--root', root, byDigest])).trim()).toContain(img.configDigest.slice(7))
  })
})

describe('idempotence and atomicity', () => {
  it('republishing is free, a second tag only links, a new image moves the link', async () => {
    const root = join(work(), 'idem-repo')
    const v1 = await pushed(small('v1'), 'life/idem:latest')
    expect((await publishJson(root, v1.ref)).images[0]!.status).toBe('published')
    const again = await cli(['publish', '--root', root, '--tls-verify=false', v1.ref])
    expect(again.exitCode).toBe(0)
    expect(again.stderr).toContain('unchanged')
    expect(again.stderr).not.toContain('downloading')

    // Same image under another tag: no layer is downloaded or unpacked.
    await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${v1.ref}`, `docker://${registry}/life/idem:stable`])
    const linked = await cli(['publish', '--root', root, '--tls-verify=false', `${registry}/life/idem:stable`])
    expect(linked.stderr).toContain('linked')
    expect(linked.stderr).not.toContain('unpacking')
    const stable = JSON.parse(await readFile(join(root, '.metadata', registry, 'life/idem:stable', 'cvmfs-oci.json'), 'utf8'))
    const latest = JSON.parse(await readFile(join(root, '.metadata', registry, 'life/idem:latest', 'cvmfs-oci.json'), 'utf8'))
    expect(stable.size).toBeGreaterThan(0)
    expect(stable.size).toBe(latest.size)

    const v2 = await pushed(small('v2'), 'life/idem:latest')
    const {images} = await publishJson(root, v2.ref)
    expect(images[0]!.status).toBe('published')
    expect((await cliOk(['resolve', '--root', root, v2.ref])).trim()).toContain(v2.configDigest.slice(7))
    // The old root stays for running containers (garbage collection removes it later).
    await lstat(join(root, '.flat', v1.configDigest.slice(7, 9), v1.configDigest.slice(7)))
    expect((await cliOk(['resolve', '--root', root, `${registry}/life/idem:stable`])).trim()).toContain(v1.configDigest.slice(7))
  })

  it('compares config digests only, as DUCC does: a re-encoded manifest or an absolute DUCC link is unchanged', async () => {
    const root = join(work(), 'config-repo')
    const gz = small('same config')
    const plain = small('same config')
    plain.layers[0]!.compression = 'none'
    const a = await pushed(gz, 'life/config:1')
    await publishJson(root, a.ref)
    // Same layers uncompressed: another manifest, the same config.
    const b = await pushed(plain, 'life/config:1')
    expect(b.manifestDigest).not.toBe(a.manifestDigest)
    expect(b.configDigest).toBe(a.configDigest)
    const again = await cli(['publish', '--root', root, '--tls-verify=false', b.ref])
    expect(again.exitCode, again.stderr).toBe(0)
    expect(again.stderr).toContain('unchanged')
    // A name DUCC published before 2019: an absolute link to the same root.
    const hex = a.configDigest.slice(7)
    const ducc = join(root, registry, 'life/config:ducc')
    await symlink(`/cvmfs/some.repo/.flat/${hex.slice(0, 2)}/${hex}`, ducc)
    await exec('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${a.ref}`, `docker://${registry}/life/config:ducc`])
    const adopted = await cli(['publish', '--root', root, '--tls-verify=false', `${registry}/life/config:ducc`])
    expect(adopted.stderr).toContain('unchanged')
    expect(await readlink(ducc)).toBe(`/cvmfs/some.repo/.flat/${hex.slice(0, 2)}/${hex}`)
  })

  it('killed mid-publish, the repository still shows the previous image, and the next run cleans up', async () => {
    const {root, v1, v2, before} = await oldAndBig('kill')

    const child = spawn(process.execPath, [BIN, 'publish', '--root', root, '--tls-verify=false', v2.ref], {stdio: 'ignore'})
    await unpacking(root, child.pid!)
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))

    // What readers see is exactly the old state: same link, same metadata, no new flat root.
    const after = await snapshotTree(root, {exclude: (rel) => rel.startsWith('.cvmfs-oci')})
    expect(diffTrees(before, after)).toEqual([])
    expect((await cliOk(['resolve', '--root', root, v1.ref])).trim()).toContain(v1.configDigest.slice(7))

    // The next run takes over the dead process's lock, removes its staging and publishes.
    const rerun = await cli(['publish', '--root', root, '--tls-verify=false', v2.ref])
    expect(rerun.exitCode, rerun.stderr).toBe(0)
    expect(rerun.stderr).toContain('stale staging')
    expect((await cliOk(['resolve', '--root', root, v2.ref])).trim()).toContain(v2.configDigest.slice(7))
    await expect(lstat(join(root, '.cvmfs-oci'))).rejects.toThrow()
  })
})

describe('interrupted', () => {
  it('by SIGINT or SIGTERM mid-publish: exits 130/143, says so, removes its download, leaves the repository as it was', async () => {
    const {root, v2, before} = await oldAndBig('signal')

    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      // Its own TMPDIR, where the download goes.
      const tmp = join(work(), `signal-tmp-${signal}`)
      await mkdir(tmp)
      const child = spawn(process.execPath, [BIN, 'publish', '--root', root, '--tls-verify=false', v2.ref], {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, TMPDIR: tmp}})
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)))
      await unpacking(root, child.pid!)
      // The download is there while it unpacks (beside what Node.js itself may keep in
      // TMPDIR: node-compile-cache on Node.js 22).
      const downloads = async () => (await readdir(tmp)).filter((name) => name.startsWith('cvmfs-oci-'))
      expect(await downloads()).toHaveLength(1)
      child.kill(signal)
      expect(await exited, stderr).toBe(code)
      expect(stderr).toContain(`interrupted by ${signal}`)
      expect(await downloads()).toEqual([])
      const after = await snapshotTree(root, {exclude: (rel) => rel.startsWith('.cvmfs-oci')})
      expect(diffTrees(before, after)).toEqual([])
    }
    // The next run clears the staging left behind and publishes.
    const rerun = await cli(['publish', '--root', root, '--tls-verify=false', v2.ref])
    expect(rerun.exitCode, rerun.stderr).toBe(0)
    expect((await cliOk(['resolve', '--root', root, v2.ref])).trim()).toContain(v2.configDigest.slice(7))
  })
})

describe('sources', () => {
  it('takes oci:, oci-archive: and docker-archive: sources', async () => {
    const root = join(work(), 'sources-repo')
    const layout = join(work(), 'src-layout')
    const [written] = await writeOciLayout(layout, [{tag: 'v1', image: small('sources')}])
    const archive = join(work(), 'image.oci.tar')
    const dockerArchive = join(work(), 'image.docker.tar')
    await exec('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `oci-archive:${archive}:v1`])
    await exec('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `docker-archive:${dockerArchive}:example.org/sci/app:3`])

    const oci = await publishJson(root, '--name', 'example.org/sci/app:1', `oci:${layout}:v1`)
    expect(oci.images[0]!.configDigest).toBe(written!.configDigest)
    await publishJson(root, '--name', 'example.org/sci/app:2', `oci-archive:${archive}:v1`)
    const fromDocker = await publishJson(root, `docker-archive:${dockerArchive}`)
    expect(fromDocker.images[0]!.name).toBe('example.org/sci/app:3')
    for (const tag of ['1', '2', '3']) await cliOk(['resolve', '--root', root, `example.org/sci/app:${tag}`])

    const unnamed = await cli(['publish', '--root', root, `oci:${layout}:v1`])
    expect(unnamed.exitCode).toBe(2)
    expect(unnamed.stderr).toContain('--name')
  })

  it('chooses the platform from an index: the host by default, --platform otherwise', async () => {
    const root = join(work(), 'multi-repo')
    const layout = join(work(), 'multi-layout')
    const {images} = await writeOciIndexLayout(layout, 'multi', [
      {...small('amd64'), architecture: 'amd64'},
      {...small('arm64'), architecture: 'arm64', variant: 'v8'},
    ])
    const ref = await pushLayout(layout, 'multi', registry, 'life/multi:1')
    const host = await publishJson(root, ref)
    expect(host.images[0]!.configDigest).toBe(process.arch === 'arm64' ? images[1]!.configDigest : images[0]!.configDigest)
    const arm = await publishJson(root, '--platform', 'linux/arm64', '--name', `${registry}/life/multi:arm`, ref)
    expect(arm.images[0]!.configDigest).toBe(images[1]!.configDigest)
    expect(await readFile(join(arm.images[0]!.path, 'etc/version'), 'utf8')).toBe('arm64')

    const none = await cli(['publish', '--root', root, '--tls-verify=false', '--platform', 'linux/s390x', ref])
    expect(none.exitCode).toBe(3)
    expect(none.stderr).toContain('linux/arm64')
  })

  it('reads zstd layers where Node.js can, and says what to do where it cannot', async () => {
    const root = join(work(), 'zstd-repo')
    const img = small('zstd')
    img.layers[0]!.compression = 'zstd'
    const hasZstd = typeof (zlib as {createZstdDecompress?: unknown}).createZstdDecompress === 'function'
    const zstdImage = await pushed(img, 'life/zstd:1')
    // The CLI runs on the same Node.js as the tests, so this is the branch it takes.
    if (hasZstd) {
      const {images} = await publishJson(root, zstdImage.ref)
      expect(await readFile(join(images[0]!.path, 'etc/version'), 'utf8')).toBe('zstd')
    } else {
      const result = await cli(['publish', '--root', root, '--tls-verify=false', zstdImage.ref])
      expect(result.exitCode).toBe(1)
      expect(result.stderr).toContain('E_ZSTD_UNSUPPORTED')
      expect(result.stderr).toContain('Node.js >= 22.15')
      expect(await readdir(root)).toEqual([])
    }
  })
})

describe('errors a user meets', () => {
  it('rejects a layer whose DiffID does not match, leaving the repository untouched', async () => {
    const root = join(work(), 'verify-repo')
    const good = await pushed(small('good'), 'life/verify:good')
    await publishJson(root, good.ref)
    const before = await snapshotTree(root)
    const spec = small('bad')
    spec.layers[0]!.diffIdOverride = `sha256:${'0'.repeat(64)}`
    const bad = await pushed(spec, 'life/verify:bad')
    const result = await cli(['publish', '--root', root, '--tls-verify=false', bad.ref])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toContain('diffid mismatch')
    expect(result.stderr).toContain('E_DIFFID_MISMATCH')
    expect(diffTrees(before, await snapshotTree(root))).toEqual([])
  })

  it('rejects a corrupt blob in a layout', async () => {
    const root = join(work(), 'corrupt-repo')
    const layout = join(work(), 'corrupt-layout')
    const [written] = await writeOciLayout(layout, [{tag: '1', image: small('corrupt')}])
    const {corruptBlob} = await import('../helpers/oci-layout.js')
    await corruptBlob(layout, written!.layerDigests[0]!)
    const result = await cli(['publish', '--root', root, '--name', 'example.org/x/corrupt:1', `oci:${layout}:1`])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toMatch(/digest/i)
    expect(await readdir(root).catch(() => [])).toEqual([])
  })

  it('names a missing image (exit 3), a plain-HTTP registry (--tls-verify=false) and a bad reference (exit 2)', async () => {
    const root = join(work(), 'err-repo')
    const missing = await cli(['publish', '--root', root, '--tls-verify=false', `${registry}/life/nothing:here`])
    expect(missing.exitCode).toBe(3)
    expect(missing.stderr).toContain('not found')
    const tls = await cli(['publish', '--root', root, `${registry}/life/nothing:here`])
    expect(tls.exitCode).toBe(1)
    expect(tls.stderr).toContain('--tls-verify=false')
    const bad = await cli(['publish', '--root', root, 'UPPER/Case:tag'])
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr).toContain('UPPER/Case:tag')
  })
})

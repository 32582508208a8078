/**
 * Proves the test helpers against the real tools: skopeo, umoci, the
 * Distribution registry from global setup, podman with runc, getfattr.
 */
import {mkdtemp, readFile, rm} from 'node:fs/promises'
import path from 'node:path'
import tarStream from 'tar-stream'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {busyboxLayer, runnableImage, TEST_USER} from '../helpers/busybox.js'
import {exec} from '../helpers/exec.js'
import {blobPath, corruptBlob, MEDIA_TYPE_INDEX, sha256Digest, writeOciIndexLayout, writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, mountsUnder, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {writeRootfs} from '../helpers/rootfs.js'
import {buildTar, fileCapability, type TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree, umociUnpack, type NodeInfo} from '../helpers/tree.js'

const ALL_TOOLS = ['podman', 'runc', 'conmon', 'skopeo', 'umoci', 'docker-registry', 'busybox', 'setfattr', 'getfattr', 'mount', 'umount']

const work = useTempDir('helpers-test-', 'all')
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  requireTools(...ALL_TOOLS) // fail loudly, never skip
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

async function tmp(name: string): Promise<string> {
  return mkdtemp(path.join(work(), `${name}-`))
}

/** Read back a tar with tar-stream's extractor (it applies PAX path/linkpath). */
async function listTar(tar: Buffer): Promise<{header: tarStream.Header; pax: Record<string, string> | undefined; data: Buffer}[]> {
  const out: {header: tarStream.Header; pax: Record<string, string> | undefined; data: Buffer}[] = []
  const extract = tarStream.extract()
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk as Buffer)
      out.push({header: entry.header, pax: (entry.header as {pax?: Record<string, string>}).pax, data: Buffer.concat(chunks)})
    }
  })()
  extract.end(tar)
  await done
  return out
}

const capability = fileCapability(['cap_net_raw', 'cap_net_bind_service', 'e'])

/** A layer touching every field snapshotTree compares. */
const richLayer: TarEntry[] = [
  {name: 'usr/', type: 'directory'},
  {name: 'usr/bin/', type: 'directory'},
  {name: 'usr/bin/ping', content: 'not really ping', mode: 0o755, xattrs: {'security.capability': capability}},
  {name: 'usr/bin/su', content: 'setuid', mode: 0o4755},
  {name: 'usr/bin/su-hard', type: 'link', linkname: 'usr/bin/su'},
  {name: 'usr/bin/tagged', content: 'x', xattrs: {'user.binary': Buffer.from([0x00, 0x80, 0xff, 0x0a, 0x3d])}},
  {name: 'srv/', type: 'directory', mode: 0o750, uid: TEST_USER.uid, gid: TEST_USER.gid},
  {name: 'srv/owned', content: 'mine', uid: TEST_USER.uid, gid: TEST_USER.gid, mode: 0o600},
  {name: 'srv/zero-mode', content: 'locked', mode: 0},
  {name: 'srv/pipe', type: 'fifo'},
  {name: 'srv/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
  {name: 'srv/dangling', type: 'symlink', linkname: '/nowhere/at/all'},
  {name: `srv/${'long-directory-name/'.repeat(6)}`, type: 'directory'},
  {name: `srv/${'long-directory-name/'.repeat(6)}file-${'y'.repeat(80)}`, content: 'deep', mtime: new Date('2001-02-03T04:05:06Z')},
  {name: 'srv/grüße-ü', content: 'utf-8 name'},
  {name: 'srv/link-to-long', type: 'symlink', linkname: `${'z'.repeat(150)}/target`},
]

describe('tools', () => {
  it('finds every real tool this project tests with', () => {
    const paths = requireTools(...ALL_TOOLS)
    expect(paths.busybox).toBe('/bin/busybox')
    expect(Object.keys(paths)).toHaveLength(ALL_TOOLS.length)
  })

  it('names the program and its Debian package when one is missing', () => {
    const saved = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      expect(() => requireTools('skopeo', 'umoci')).toThrow(
        'skopeo not found on PATH: install the Debian package skopeo (see .ci/run)\numoci not found on PATH: install the Debian package umoci (see .ci/run)',
      )
    } finally {
      process.env.PATH = saved
    }
    expect(() => requireTools('no-such-tool')).toThrow(/unknown tool "no-such-tool"/)
  })

  it('exec names a program that cannot be started', async () => {
    await expect(exec('no-such-program-here', ['x'])).rejects.toThrow('no-such-program-here x: no-such-program-here not found on PATH')
    await expect(exec('/bin/busybox', ['false'])).rejects.toThrow(/^\/bin\/busybox false exited with 1/)
    expect(await exec('/bin/busybox', ['false'], {reject: false})).toMatchObject({exitCode: 1})
  })
})

describe('buildTar', () => {
  it('writes hostile and awkward names exactly as given', async () => {
    const names = ['../evil', '/abs/path', 'a/../../x', './dot', `${'n'.repeat(120)}`, 'dir/ünïcödé-名前', 'trailing/']
    const tar = await buildTar([
      ...names.map((name): TarEntry => ({name, content: name})),
      {name: 'escape', type: 'symlink', linkname: '../../../../etc/shadow'},
      {name: 'hard', type: 'link', linkname: '/etc/passwd'},
    ])
    const entries = await listTar(tar)
    expect(entries.map((e) => e.header.name)).toEqual([...names, 'escape', 'hard'])
    expect(entries.slice(0, names.length).map((e) => e.data.toString())).toEqual(names)
    expect(entries[names.length]!.header).toMatchObject({type: 'symlink', linkname: '../../../../etc/shadow'})
    expect(entries[names.length + 1]!.header).toMatchObject({type: 'link', linkname: '/etc/passwd'})
  })

  it('keeps mode 0, setuid bits, big ids and caller PAX records', async () => {
    const tar = await buildTar([
      {name: 'zero', content: '', mode: 0},
      {name: 'suid', content: '', mode: 0o4755},
      {name: 'big', content: '', uid: 3_000_000, gid: 4_000_000},
      {name: 'paxed', content: '', pax: {comment: 'from a test'}},
    ])
    const entries = await listTar(tar)
    expect(entries.map((e) => e.header.mode)).toEqual([0, 0o4755, 0o644, 0o644])
    expect(entries[2]!.pax).toMatchObject({uid: '3000000', gid: '4000000'})
    expect(entries[3]!.pax).toMatchObject({comment: 'from a test'})
  })

  it('writes binary xattr values byte for byte in SCHILY.xattr records', async () => {
    const value = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0xff, 0xc3, 0x28, 0x0a])
    const tar = await buildTar([{name: 'f', content: 'x', xattrs: {'security.capability': value}}])
    // The PAX data block follows the first header; find the raw record in it.
    const record = Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), value, Buffer.from('\n')])
    const at = tar.indexOf(record)
    expect(at).toBeGreaterThan(512)
    const len = Number(tar.subarray(512, at).toString('latin1').split('\n').pop())
    expect(len).toBe(String(len).length + record.length)
    expect(tar[156]).toBe('x'.charCodeAt(0))
  })

  it('builds the documented VFS_CAP_REVISION_2 capability bytes', () => {
    // What `setcap cap_net_raw+ep` stores.
    expect(fileCapability(['cap_net_raw', 'e']).toString('hex')).toBe('0100000200200000000000000000000000000000')
    expect(fileCapability(['cap_setuid']).toString('hex')).toBe('0000000280000000000000000000000000000000')
    expect(() => fileCapability(['cap_bogus'])).toThrow(/unknown capability/)
  })
})

describe('OCI layouts with skopeo and umoci', () => {
  it('writes a layout skopeo inspects and umoci unpacks, matching writeRootfs field for field', async () => {
    const layout = await tmp('layout')
    const [written] = await writeOciLayout(layout, [
      {tag: 'rich', image: {layers: [{entries: busyboxLayer()}, {entries: richLayer, compression: 'none'}], config: {Cmd: ['/bin/sh'], User: '1000'}}},
    ])
    const inspect = JSON.parse((await exec('skopeo', ['inspect', `oci:${layout}:rich`])).stdout)
    expect(inspect.Digest).toBe(written!.manifestDigest)
    expect(inspect.Layers).toEqual(written!.layerDigests)
    expect(inspect.Architecture).toBe('amd64')

    const unpacked = await umociUnpack(layout, 'rich') // default: a new temp bundle dir
    cleanups.push(() => rm(path.dirname(unpacked), {recursive: true, force: true}))
    const expectedDir = await tmp('expected')
    await writeRootfs(expectedDir, [...busyboxLayer(), ...richLayer])
    const got = await snapshotTree(unpacked)
    const want = await snapshotTree(expectedDir)
    expect(diffTrees(want, got)).toEqual([])

    // The fixtures really reached the file system:
    expect(got.get('usr/bin/ping')!.xattrs['security.capability']).toBe(capability.toString('hex'))
    expect(got.get('usr/bin/tagged')!.xattrs['user.binary']).toBe('0080ff0a3d')
    expect(got.get('usr/bin/su')).toMatchObject({mode: 0o4755, hardlink: 'usr/bin/su'})
    expect(got.get('usr/bin/su-hard')!.hardlink).toBe('usr/bin/su')
    expect(got.get('srv/owned')).toMatchObject({uid: 1000, gid: 1000, mode: 0o600})
    expect(got.get('srv/zero-mode')!.mode).toBe(0)
    expect(got.get('srv/null')).toMatchObject({type: 'char', rdev: '1:3'})
    expect(got.get('srv/pipe')!.type).toBe('fifo')
    expect(got.get('srv/link-to-long')!.target).toBe(`${'z'.repeat(150)}/target`)
    expect(got.get('srv/grüße-ü')!.sha256).toBe(sha256Digest(Buffer.from('utf-8 name')).slice(7))
    expect(got.get(`srv/${'long-directory-name/'.repeat(6)}file-${'y'.repeat(80)}`)!.mtimeMs).toBe(Date.parse('2001-02-03T04:05:06Z'))
    expect(got.get('bin/busybox')).toMatchObject({type: 'file', mode: 0o755})
    expect(got.get('bin/sh')).toMatchObject({type: 'symlink', target: 'busybox'})
  })

  it('diffTrees reports missing, extra and changed fields', () => {
    const node = (over: Partial<NodeInfo>): NodeInfo => ({type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, sha256: 'aa', mtimeMs: 0, xattrs: {}, ...over})
    const a = new Map([
      ['same', node({})],
      ['gone', node({})],
      ['changed', node({mode: 0o4755, xattrs: {'security.capability': '01'}})],
    ])
    const b = new Map([
      ['same', node({})],
      ['new', node({type: 'dir'})],
      ['changed', node({mode: 0o755, uid: 1000})],
    ])
    expect(diffTrees(a, b)).toEqual([
      'changed: mode 4755 != 0755',
      'changed: uid 0 != 1000',
      'changed: xattr security.capability 01 != (none)',
      'gone: missing (expected file)',
      'new: unexpected dir',
    ])
    expect(diffTrees(a, a)).toEqual([])
  })

  it('snapshotTree honours exclude for whole subtrees', async () => {
    const dir = await tmp('exclude')
    await writeRootfs(dir, [{name: 'keep', content: 'k'}, {name: 'skip/inner', content: 's', xattrs: {'user.x': Buffer.from('1')}}])
    const snap = await snapshotTree(dir, {exclude: (rel) => rel === 'skip'})
    expect([...snap.keys()]).toEqual(['keep'])
  })

  it('wrong diff_ids and corrupted blobs are caught by umoci', async () => {
    const layout = await tmp('bad')
    const [badDiff] = await writeOciLayout(layout, [
      {tag: 'diffid', image: {layers: [{entries: [{name: 'f', content: 'x'}], diffIdOverride: `sha256:${'0'.repeat(64)}`}]}},
    ])
    expect((badDiff!.config as {rootfs: {diff_ids: string[]}}).rootfs.diff_ids).toEqual([`sha256:${'0'.repeat(64)}`])
    await expect(umociUnpack(layout, 'diffid', path.join(await tmp('b1'), 'b'))).rejects.toThrow(/diffid mismatch: got sha256:[0-9a-f]{64} expected sha256:0{64}/)

    const [corrupt] = await writeOciLayout(layout, [{tag: 'corrupt', image: {layers: [{entries: [{name: 'g', content: 'y'.repeat(4096)}], compression: 'none'}]}}])
    const before = await readFile(blobPath(layout, corrupt!.layerDigests[0]!))
    await corruptBlob(layout, corrupt!.layerDigests[0]!)
    expect(await readFile(blobPath(layout, corrupt!.layerDigests[0]!))).not.toEqual(before)
    await expect(umociUnpack(layout, 'corrupt', path.join(await tmp('b2'), 'b'))).rejects.toThrow(/digest mismatch/)
  })

  it('writes zstd layers whose uncompressed sha256 is the diff_id', async () => {
    const layout = await tmp('zstd')
    if (!('zstdCompress' in (await import('node:zlib')))) requireTools('zstd')
    const [img] = await writeOciLayout(layout, [{tag: 'z', image: {layers: [{entries: [{name: 'f', content: 'zstd!'}], compression: 'zstd'}]}}])
    expect((img!.manifest as {layers: {mediaType: string}[]}).layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd')
    const inspect = JSON.parse((await exec('skopeo', ['inspect', `oci:${layout}:z`])).stdout)
    expect(inspect.Layers).toEqual(img!.layerDigests)
  })

  it('writes a multi-platform index that skopeo resolves per platform', async () => {
    const layout = await tmp('index')
    const {indexDigest, images} = await writeOciIndexLayout(layout, 'multi', [
      {...runnableImage(), architecture: 'amd64'},
      {layers: [{entries: [{name: 'arm', content: 'arm64'}]}], architecture: 'arm64', variant: 'v8'},
    ])
    const raw = JSON.parse((await exec('skopeo', ['inspect', '--raw', `oci:${layout}:multi`])).stdout)
    expect(raw.mediaType).toBe(MEDIA_TYPE_INDEX)
    expect(raw.manifests.map((m: {platform: object}) => m.platform)).toEqual([
      {architecture: 'amd64', os: 'linux'},
      {architecture: 'arm64', os: 'linux', variant: 'v8'},
    ])
    expect(sha256Digest(await readFile(blobPath(layout, indexDigest)))).toBe(indexDigest)
    const arm = JSON.parse((await exec('skopeo', ['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', `oci:${layout}:multi`])).stdout)
    // skopeo reports the index's digest, but the platform's layers.
    expect(arm).toMatchObject({Digest: indexDigest, Architecture: 'arm64', Layers: images[1]!.layerDigests})
    const amd = JSON.parse((await exec('skopeo', ['--override-arch', 'amd64', 'inspect', `oci:${layout}:multi`])).stdout)
    expect(amd.Layers).toEqual(images[0]!.layerDigests)
  })
})

describe('registry from global setup', () => {
  it('receives pushes of images and indexes that skopeo can inspect', async () => {
    const registry = registryAddress()
    expect(registry).toMatch(/^127\.0\.0\.1:\d+$/)
    const layout = await tmp('push')
    const [img] = await writeOciLayout(layout, [{tag: 'one', image: runnableImage([[{name: 'hello', content: 'hi'}]])}])
    const ref = await pushLayout(layout, 'one', registry, 'helpers/busybox:one')
    expect(ref).toBe(`${registry}/helpers/busybox:one`)
    const inspect = JSON.parse((await exec('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout)
    expect(inspect.Digest).toBe(img!.manifestDigest)
    expect(inspect.Layers).toEqual(img!.layerDigests)

    const {indexDigest} = await writeOciIndexLayout(layout, 'multi', [runnableImage(), {...runnableImage(), architecture: 'arm64'}])
    const multiRef = await pushLayout(layout, 'multi', registry, 'helpers/multi:1')
    const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${multiRef}`])
    expect(sha256Digest(Buffer.from(raw.stdout))).toBe(indexDigest)
  })
})

describe('isolated podman', () => {
  let podman: IsolatedPodman
  let rootfs: string
  let bare: string
  const mounts: ReadonlyMount[] = []

  beforeAll(async () => {
    podman = await isolatedPodman({insecureRegistries: [registryAddress()]})
    cleanups.push(() => podman.cleanup())
    rootfs = await tmp('rootfs')
    await writeRootfs(rootfs, busyboxLayer({podmanMountPoints: true}))
    bare = await tmp('bare')
    await writeRootfs(bare, busyboxLayer())
  })

  afterAll(async () => {
    for (const m of mounts) await m.unmount()
  })

  it('uses only its own configuration and storage', async () => {
    const info = JSON.parse((await podman.run(['info', '--format', 'json'], {check: true})).stdout)
    expect(info.store.graphRoot).toBe(path.join(podman.dir, 'root'))
    expect(info.store.runRoot).toBe(path.join(podman.dir, 'runroot'))
    expect(info.store.graphDriverName).toBe('overlay')
    expect(info.host.ociRuntime.name).toBe('runc')
    expect(info.host.cgroupManager).toBe('cgroupfs')
    expect(podman.env.CONTAINERS_CONF).toBe(path.join(podman.dir, 'containers.conf'))
  })

  it('runs a busybox rootfs', async () => {
    const res = await podman.run(['run', '--rm', '--rootfs', rootfs, '/bin/busybox', 'echo', 'hi'])
    expect(res.stderr).toBe('')
    expect(res).toMatchObject({exitCode: 0, stdout: 'hi\n'})
  })

  it('runs a read-only bind-mounted rootfs, plain as root and as :O with --user 1000', async () => {
    const ro = await readonlyBindMount(rootfs)
    mounts.push(ro)
    const write = await exec('/bin/busybox', ['touch', path.join(ro.path, 'tmp', 'probe')], {reject: false})
    expect(write.exitCode).not.toBe(0) // really read-only

    const plain = await podman.run(['run', '--rm', '--rootfs', ro.path, '/bin/busybox', 'echo', 'hi'])
    expect(plain).toMatchObject({exitCode: 0, stdout: 'hi\n'})
    const overlay = await podman.run(['run', '--rm', '--user', '1000', '--rootfs', `${ro.path}:O`, '/bin/id'])
    expect(overlay).toMatchObject({exitCode: 0, stdout: 'uid=1000(user) gid=1000(user) groups=1000(user)\n'})
    const asUser = await podman.run(['run', '--rm', '--user', '1000', '--rootfs', ro.path, '/bin/id', '-u'])
    expect(asUser).toEqual({exitCode: 0, stdout: '1000\n', stderr: ''})

    await ro.unmount()
    expect(await mountsUnder(ro.path)).toEqual([])
  })

  it('cannot start a read-only rootfs lacking podman mount points (why podmanMountPoints exists)', async () => {
    const ro = await readonlyBindMount(bare)
    mounts.push(ro)
    const res = await podman.run(['run', '--rm', '--rootfs', ro.path, '/bin/busybox', 'echo', 'hi'])
    expect(res.exitCode).not.toBe(0)
    expect(res.stderr).toMatch(/read-only file system/)
    const overlay = await podman.run(['run', '--rm', '--rootfs', `${ro.path}:O`, '/bin/busybox', 'echo', 'hi'])
    expect(overlay).toMatchObject({exitCode: 0, stdout: 'hi\n'})
  })

  it('pulls and runs an image pushed to the test registry', async () => {
    const layout = await tmp('podman-pull')
    await writeOciLayout(layout, [{tag: 'run', image: runnableImage([[{name: 'greeting', content: 'hello from layer 2\n'}]])}])
    const ref = await pushLayout(layout, 'run', registryAddress(), 'helpers/runnable:1')
    const res = await podman.run(['run', '--rm', '--quiet', ref, 'cat', '/greeting'])
    expect(res).toEqual({exitCode: 0, stdout: 'hello from layer 2\n', stderr: ''})
  })
})

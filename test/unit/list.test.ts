import {lstat, mkdir, realpath, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {listImages, normaliseDuccManifest} from '../../src/layout/list.js'
import {flatRootRel, relativeLinkTarget} from '../../src/layout/paths.js'
import {useTempDir} from '../helpers/temp-dir.js'

const digest = (c: string) => `sha256:${c.repeat(64)}`
const CONFIG_A = digest('a')
const CONFIG_B = digest('b')

const top = useTempDir('cvmfs-oci-list-', 'all')

async function writeJson(root: string, rel: string, value: unknown): Promise<void> {
  await mkdir(dirname(join(root, rel)), {recursive: true})
  await writeFile(join(root, rel), JSON.stringify(value))
}
async function publish(root: string, name: string, config: string): Promise<void> {
  await mkdir(join(root, flatRootRel(config)), {recursive: true})
  await mkdir(dirname(join(root, name)), {recursive: true})
  await symlink(relativeLinkTarget(name, config), join(root, name))
}

/** DUCC's Go-serialised manifest, capitalised keys. */
const duccManifest = (config: string, sizes: number[]) => ({
  SchemaVersion: 2,
  MediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  Config: {MediaType: 'application/vnd.docker.container.image.v1+json', Size: 1234, Digest: config},
  Layers: sizes.map((Size, i) => ({MediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', Size, Digest: digest(String(i))})),
})

describe('normaliseDuccManifest', () => {
  it('reads capitalised Go keys and lower-case OCI keys alike', () => {
    const expected = {schemaVersion: 2, mediaType: 'm', configDigest: CONFIG_A, layers: [{mediaType: 'l', size: 5, digest: CONFIG_B}]}
    expect(normaliseDuccManifest({SchemaVersion: 2, MediaType: 'm', Config: {Digest: CONFIG_A}, Layers: [{MediaType: 'l', Size: 5, Digest: CONFIG_B}]})).toEqual(expected)
    expect(normaliseDuccManifest({schemaVersion: 2, mediaType: 'm', config: {digest: CONFIG_A}, layers: [{mediaType: 'l', size: 5, digest: CONFIG_B}]})).toEqual(expected)
  })

  it.each([null, 3, 'x', []])('gives nothing for %j', (json) => {
    expect(normaliseDuccManifest(json)).toBeUndefined()
  })

  it('tolerates missing or odd fields', () => {
    expect(normaliseDuccManifest({Layers: [null, {Size: 'big'}]})).toEqual({layers: [{}]})
  })
})

describe('listImages', () => {
  let root: string
  beforeAll(async () => {
    root = join(top(), 'repo')
    // DUCC-published: capitalised manifest, no record.
    await publish(root, 'registry.hub.docker.com/library/centos:centos7', CONFIG_A)
    await writeJson(root, '.metadata/registry.hub.docker.com/library/centos:centos7/manifest.json', duccManifest(CONFIG_A, [100, 23]))
    // Ours: lower-case manifest and a record.
    await publish(root, '127.0.0.1:5000/foo/bar:1', CONFIG_B)
    await writeJson(root, '.metadata/127.0.0.1:5000/foo/bar:1/manifest.json', {schemaVersion: 2, config: {digest: CONFIG_B}, layers: [{size: 7}]})
    await writeJson(root, '.metadata/127.0.0.1:5000/foo/bar:1/cvmfs-oci.json', {
      reference: '127.0.0.1:5000/foo/bar:1', manifestDigest: digest('e'), configDigest: CONFIG_B,
      platform: 'linux/arm64/v8', size: 4096, published: '2024-05-01T12:00:00.000Z', source: 'registry',
    })
    // Digest-only name, link missing (garbage collected or half published).
    await writeJson(root, `.metadata/quay.io/a/b:${digest('f')}/manifest.json`, duccManifest(CONFIG_A, [1]))
    // One platform of a name DUCC published from an index: metadata per platform only.
    await writeJson(root, '.metadata/.multiarch/amd64/quay.io/m:1/manifest.json', duccManifest(CONFIG_A, [1]))
    // Not images.
    await writeJson(root, '.metadata/.blobs/sha256/x/manifest.json', {})
    await writeJson(root, '.metadata/quay.io/m/notes.json', {})
  })

  it('lists every image under .metadata, sorted, with what manifest and record say', async () => {
    const images = await listImages(root)
    expect(images.map((i) => i.name)).toEqual([
      '127.0.0.1:5000/foo/bar:1',
      `quay.io/a/b:${digest('f')}`,
      'quay.io/m:1',
      'registry.hub.docker.com/library/centos:centos7',
    ])
    const [ours, orphan, platformOnly, ducc] = images
    expect(platformOnly).toEqual({
      name: 'quay.io/m:1',
      reference: 'quay.io/m:1',
      configDigest: CONFIG_A,
      size: 1,
      sizeKind: 'compressed',
      platforms: [{arch: 'amd64', configDigest: CONFIG_A, size: 1, sizeKind: 'compressed'}],
    })
    expect(ours).toEqual({
      name: '127.0.0.1:5000/foo/bar:1',
      reference: '127.0.0.1:5000/foo/bar:1',
      configDigest: CONFIG_B,
      manifestDigest: digest('e'),
      size: 4096,
      sizeKind: 'unpacked',
      date: '2024-05-01T12:00:00.000Z',
      platform: 'linux/arm64/v8',
      path: await realpath(join(root, flatRootRel(CONFIG_B))),
    })
    const linkTime = (await lstat(join(root, 'registry.hub.docker.com/library/centos:centos7'))).mtime.toISOString()
    expect(ducc).toEqual({
      name: 'registry.hub.docker.com/library/centos:centos7',
      reference: 'docker.io/library/centos:centos7',
      configDigest: CONFIG_A,
      size: 123,
      sizeKind: 'compressed',
      date: linkTime,
      path: await realpath(join(root, flatRootRel(CONFIG_A))),
    })
    expect(orphan).toEqual({
      name: `quay.io/a/b:${digest('f')}`,
      reference: `quay.io/a/b@${digest('f')}`,
      configDigest: CONFIG_A,
      size: 1,
      sizeKind: 'compressed',
    })
  })

  it('gives an empty list for a root without .metadata', async () => {
    const empty = join(top(), 'empty')
    await mkdir(empty)
    expect(await listImages(empty)).toEqual([])
  })

  it('says so when the root does not exist', async () => {
    await expect(listImages(join(top(), 'nope'))).rejects.toMatchObject({code: 'E_ROOT_NOT_FOUND', exitCode: 3})
  })

  it('survives a malformed manifest and a broken link', async () => {
    const r = join(top(), 'broken')
    await writeJson(r, '.metadata/quay.io/x:1/manifest.json', {})
    await writeFile(join(r, '.metadata/quay.io/x:1/manifest.json'), '{not json')
    await mkdir(join(r, 'quay.io'), {recursive: true})
    await symlink('../.flat/00/00', join(r, 'quay.io/x:1'))
    const [image] = await listImages(r)
    expect(image).toMatchObject({name: 'quay.io/x:1', reference: 'quay.io/x:1'})
    expect(image?.path).toBeUndefined()
    expect(image?.date).toBeDefined()
  })
})

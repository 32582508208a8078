/**
 * The podman store without podman: the names containers/storage expects (pure), how a
 * change moves names, drops images and prunes layers (pure), and what updatePodmanStore
 * leaves on disk — atomic, idempotent, relative links, lock tokens, entries of other
 * writers kept. test/e2e/podman-store*.test.ts shows real podman reading it.
 */
import {createHash} from 'node:crypto'
import {lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {CvmfsOciError} from '../../src/errors.js'
import {blobRel, flatRootRel} from '../../src/layout/paths.js'
import type {ImageRecord} from '../../src/layout/write.js'
import {silentLogger} from '../../src/log.js'
import {applyChange, storeDate, type ImageAddition, type StoreState} from '../../src/podman-store/model.js'
import {
  bigDataFileName,
  diffLinkTarget,
  flatLayerDiffDigest,
  flatLayerId,
  IMAGES_JSON,
  IMAGES_LOCK,
  LAYERS_JSON,
  LAYERS_LOCK,
  lockToken,
  podmanName,
  PODMAN_STORE_DIR,
  shortLinkId,
} from '../../src/podman-store/paths.js'
import {updatePodmanStore} from '../../src/podman-store/store.js'
import {useTempDir} from '../helpers/temp-dir.js'

const sha = (text: string) => createHash('sha256').update(text).digest('hex')
const digest = (c: string) => `sha256:${c.repeat(64)}`
const CONFIG_A = digest('a')
const CONFIG_B = digest('b')
const MANIFEST_A = digest('1')
const MANIFEST_A2 = digest('2')
const MANIFEST_B = digest('3')

describe('names containers/storage expects', () => {
  it("derives the layer id by DUCC's rule and a diff digest no tar has", () => {
    expect(flatLayerId(CONFIG_A)).toBe(sha(`cvmfs-flat-layer:${'a'.repeat(64)}`))
    expect(flatLayerDiffDigest(flatLayerId(CONFIG_A))).toBe(`sha256:${flatLayerId(CONFIG_A)}`)
    expect(flatLayerId(CONFIG_A)).not.toBe(flatLayerId(CONFIG_B))
  })

  it('derives 26-character base32 short links, stable and distinct', () => {
    const a = shortLinkId(flatLayerId(CONFIG_A))
    expect(a).toMatch(/^[A-Z2-7]{26}$/)
    expect(shortLinkId(flatLayerId(CONFIG_A))).toBe(a)
    expect(shortLinkId(flatLayerId(CONFIG_B))).not.toBe(a)
  })

  it.each([
    ['manifest', 'manifest'],
    ['signatures', 'signatures'],
    [CONFIG_A, `=${Buffer.from(CONFIG_A).toString('base64')}`],
    [`manifest-${MANIFEST_A}`, `=${Buffer.from(`manifest-${MANIFEST_A}`).toString('base64')}`],
    ['Manifest', '=TWFuaWZlc3Q='],
  ])('big-data key %s is the file %s (makeBigDataBaseName)', (key, file) => {
    expect(bigDataFileName(key)).toBe(file)
  })

  it('points diff three levels up to the flat root, relatively', () => {
    expect(diffLinkTarget(CONFIG_A)).toBe(`../../../${flatRootRel(CONFIG_A)}`)
  })

  it.each([
    ['registry.hub.docker.com/library/ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['registry.hub.docker.com/atlas/analysisbase:21.2.1', 'docker.io/atlas/analysisbase:21.2.1'],
    ['127.0.0.1:5000/e2e/busybox:1', '127.0.0.1:5000/e2e/busybox:1'],
    [`example.org/x:${MANIFEST_A}`, `example.org/x@${MANIFEST_A}`],
    ['docker.io/library/ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['Not A Name', undefined],
  ])('podman names %s %s', (name, expected) => {
    expect(podmanName(name)).toBe(expected)
  })

  it.each([
    ['2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z'],
    ['2024-01-01T00:00:00.123456789+02:00', '2024-01-01T00:00:00.123456789+02:00'],
    ['2024-01-01', 'FALLBACK'],
    ['2024-13-45T99:00:00Z', 'FALLBACK'],
    ['yesterday', 'FALLBACK'],
    [undefined, 'FALLBACK'],
  ])('keeps only dates Go reads: %s', (value, expected) => {
    expect(storeDate(value, 'FALLBACK')).toBe(expected)
  })

  it('gives each JSON state its own 64-hex lock token', () => {
    expect(lockToken('[]')).toMatch(/^[a-f0-9]{64}$/)
    expect(lockToken('[]')).toBe(lockToken('[]'))
    expect(lockToken('[{"id":"x"}]')).not.toBe(lockToken('[]'))
  })
})

function addition(name: string, configDigest: string, manifestDigest: string): ImageAddition {
  return {name, configDigest, manifestDigest, manifestSize: 500, configSize: 900, size: 1234, created: '2024-01-01T00:00:00Z', now: '2025-01-01T00:00:00Z'}
}
const empty = (): StoreState => ({images: [], layers: []})
const change = (add: ImageAddition[], removeNames: string[] = [], deadLayers: string[] = []) => ({add, removeNames, deadLayers: new Set(deadLayers)})

describe('applyChange', () => {
  it('adds an image on its own synthetic layer, with its manifest and config as big data', () => {
    const update = applyChange(empty(), change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)]))
    const layerId = flatLayerId(CONFIG_A)
    expect(update.layers).toEqual([{id: layerId, created: '2025-01-01T00:00:00Z', 'diff-digest': `sha256:${layerId}`, 'diff-size': 1234}])
    expect(update.images).toEqual([
      {
        id: 'a'.repeat(64),
        digest: MANIFEST_A,
        names: ['x.org/a:1'],
        layer: layerId,
        created: '2024-01-01T00:00:00Z',
        'big-data-names': ['manifest', CONFIG_A],
        'big-data-sizes': {manifest: 500, [CONFIG_A]: 900},
        'big-data-digests': {manifest: MANIFEST_A, [CONFIG_A]: CONFIG_A},
      },
    ])
    expect(update).toMatchObject({writeImages: ['a'.repeat(64)], writeLayers: [layerId], droppedImages: [], droppedLayers: []})
  })

  it('is idempotent: the same addition gives the same state', () => {
    const once = applyChange(empty(), change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)]))
    const twice = applyChange(once, change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)]))
    expect(JSON.stringify(twice.images)).toBe(JSON.stringify(once.images))
    expect(JSON.stringify(twice.layers)).toBe(JSON.stringify(once.layers))
  })

  it('gives one image many names, and a second manifest of the same config its own key', () => {
    let state: StoreState = applyChange(empty(), change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)]))
    state = applyChange(state, change([addition('x.org/a:latest', CONFIG_A, MANIFEST_A2)]))
    expect(state.images).toHaveLength(1)
    expect(state.images[0]!.names).toEqual(['x.org/a:1', 'x.org/a:latest'])
    expect(state.images[0]!.digest).toBe(MANIFEST_A)
    expect(state.images[0]!['big-data-names']).toEqual(['manifest', CONFIG_A, `manifest-${MANIFEST_A2}`])
  })

  it('moves a name to the image it now points to, and drops an image left without names but keeps its layer', () => {
    let state: StoreState = applyChange(empty(), change([addition('x.org/a:1', CONFIG_A, MANIFEST_A), addition('x.org/b:1', CONFIG_B, MANIFEST_B)]))
    const update = applyChange(state, change([addition('x.org/a:1', CONFIG_B, MANIFEST_B)]))
    expect(update.images.map((i) => [i.id, i.names])).toEqual([['b'.repeat(64), ['x.org/b:1', 'x.org/a:1']]])
    expect(update.droppedImages).toEqual(['a'.repeat(64)])
    // Readers that loaded images.json a moment ago, and stopped containers, still find it.
    expect(update.layers.map((l) => l.id)).toEqual([flatLayerId(CONFIG_A), flatLayerId(CONFIG_B)])
    state = update
    // Once its flat root is gone, the unused layer goes; a used one never does.
    const pruned = applyChange(state, change([], [], [flatLayerId(CONFIG_A), flatLayerId(CONFIG_B)]))
    expect(pruned.layers.map((l) => l.id)).toEqual([flatLayerId(CONFIG_B)])
    expect(pruned.droppedLayers).toEqual([flatLayerId(CONFIG_A)])
  })

  it('removes names, and re-adds a name removed in the same change', () => {
    const state = applyChange(empty(), change([addition('x.org/a:1', CONFIG_A, MANIFEST_A), addition('x.org/a:2', CONFIG_A, MANIFEST_A)]))
    expect(applyChange(state, change([], ['x.org/a:1'])).images[0]!.names).toEqual(['x.org/a:2'])
    expect(applyChange(state, change([], ['x.org/a:1', 'x.org/a:2'])).images).toEqual([])
    expect(applyChange(state, change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)], ['x.org/a:1'])).images[0]!.names).toEqual(['x.org/a:1', 'x.org/a:2'])
  })

  it("keeps other writers' entries and fields, takes a name it publishes from them, and keeps the layers they stand on", () => {
    const ducc: StoreState = {
      images: [{id: 'c'.repeat(64), names: ['x.org/c:1', 'x.org/a:1'], layer: 'top', 'names-history': ['x.org/c:0'], metadata: '{}'}],
      layers: [
        {id: 'base', 'diff-digest': digest('e'), 'diff-size': 1},
        {id: 'top', parent: 'base', 'diff-digest': digest('f'), 'diff-size': 1, 'compressed-diff-digest': digest('9')},
      ],
    }
    const update = applyChange(ducc, change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)], [], ['base', 'top']))
    expect(update.images[0]).toEqual({id: 'c'.repeat(64), names: ['x.org/c:1'], layer: 'top', 'names-history': ['x.org/c:0'], metadata: '{}'})
    expect(update.layers.slice(0, 2)).toEqual(ducc.layers)
  })

  it('moves an image written with per-layer trees onto its flat layer', () => {
    const ducc: StoreState = {images: [{id: 'a'.repeat(64), names: ['x.org/a:0'], layer: 'top'}], layers: [{id: 'top', 'diff-digest': digest('f'), 'diff-size': 1}]}
    const update = applyChange(ducc, change([addition('x.org/a:1', CONFIG_A, MANIFEST_A)]))
    expect(update.images[0]!.layer).toBe(flatLayerId(CONFIG_A))
    expect(update.images[0]!.names).toEqual(['x.org/a:0', 'x.org/a:1'])
  })
})

describe('updatePodmanStore on disk', () => {
  const top = useTempDir('cvmfs-oci-store-', 'all')
  let counter = 0

  /** A repository with flat roots and the blobs publish keeps, and the records of its names. */
  async function repository(): Promise<{root: string; record: (name: string, config: 'a' | 'b', manifest?: string) => Promise<ImageRecord>}> {
    const root = join(top(), `repo${counter++}`)
    const bytes: Record<string, Buffer> = {}
    for (const c of ['a', 'b']) {
      const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', n: c, rootfs: {type: 'layers', diff_ids: []}}))
      bytes[c] = config
      await mkdir(join(root, flatRootRel(`sha256:${sha(config.toString())}`), 'etc'), {recursive: true})
      await put(root, config)
    }
    const record = async (name: string, c: 'a' | 'b', manifestText = `manifest of ${c}`): Promise<ImageRecord> => {
      const configDigest = `sha256:${sha(bytes[c]!.toString())}`
      const manifestDigest = `sha256:${sha(manifestText)}`
      await put(root, Buffer.from(manifestText))
      return {reference: name, name, manifestDigest, configDigest, platform: 'linux/amd64', size: 42, created: '2024-05-01T10:00:00Z', published: '2025-01-01T00:00:00Z', source: name}
    }
    return {root, record}
  }
  async function put(root: string, data: Buffer): Promise<void> {
    const file = join(root, blobRel(`sha256:${sha(data.toString())}`))
    await mkdir(dirname(file), {recursive: true})
    await writeFile(file, data)
  }
  const json = async (root: string, rel: string) => JSON.parse(await readFile(join(root, rel), 'utf8'))
  /** Every path below podmanStore with its inode and mtime: what changed, if anything. */
  async function fingerprint(root: string): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    const walk = async (rel: string) => {
      for (const name of await readdir(join(root, rel))) {
        const st = await lstat(join(root, rel, name))
        out.set(join(rel, name), `${st.ino}:${st.mtimeMs}`)
        if (st.isDirectory()) await walk(join(rel, name))
      }
    }
    await walk(PODMAN_STORE_DIR)
    return out
  }

  it('writes the layout podman reads, with relative links that lead to the flat root', async () => {
    const {root, record} = await repository()
    const a = await record('registry.hub.docker.com/library/a:1', 'a')
    await updatePodmanStore(root, {add: [a]}, silentLogger())
    const layerId = flatLayerId(a.configDigest)
    const imageId = a.configDigest.slice(7)
    const store = join(root, PODMAN_STORE_DIR)
    expect((await readdir(store)).sort()).toEqual(['.cvmfscatalog', 'overlay', 'overlay-images', 'overlay-layers'])
    expect((await readdir(join(store, 'overlay-images'))).sort()).toEqual([imageId, 'images.json', 'images.lock'].sort())
    expect((await readdir(join(store, 'overlay-layers'))).sort()).toEqual(['layers.json', 'layers.lock'])
    expect(await readlink(join(store, 'overlay', layerId, 'diff'))).toBe(`../../../${flatRootRel(a.configDigest)}`)
    const link = await readFile(join(store, 'overlay', layerId, 'link'), 'utf8')
    expect(link).toBe(shortLinkId(layerId))
    expect(await readlink(join(store, 'overlay/l', link))).toBe(`../${layerId}/diff`)
    // The chain leads to the flat root itself.
    expect((await stat(join(store, 'overlay/l', link, 'etc'))).isDirectory()).toBe(true)
    expect(await readFile(join(store, 'overlay-images', imageId, 'manifest'), 'utf8')).toBe('manifest of a')
    expect(await readFile(join(store, 'overlay-images', imageId, bigDataFileName(a.configDigest)))).toEqual(await readFile(join(root, blobRel(a.configDigest))))
    const [image] = await json(root, IMAGES_JSON)
    expect(image).toMatchObject({id: imageId, names: ['docker.io/library/a:1'], digest: a.manifestDigest, layer: layerId, created: '2024-05-01T10:00:00Z'})
    expect(await json(root, LAYERS_JSON)).toEqual([{id: layerId, created: expect.any(String), 'diff-digest': `sha256:${layerId}`, 'diff-size': 42}])
    expect(await readFile(join(root, IMAGES_LOCK), 'utf8')).toBe(lockToken(await readFile(join(root, IMAGES_JSON), 'utf8')))
    expect(await readFile(join(root, LAYERS_LOCK), 'utf8')).toBe(lockToken(await readFile(join(root, LAYERS_JSON), 'utf8')))
    // No temporary file is left behind.
    expect([...(await fingerprint(root)).keys()].filter((p) => p.includes('.cvmfs-oci-tmp'))).toEqual([])
  })

  it('changes nothing when nothing changed, and replaces files (never edits them) when something did', async () => {
    const {root, record} = await repository()
    const a = await record('x.org/a:1', 'a')
    await updatePodmanStore(root, {add: [a]}, silentLogger())
    const before = await fingerprint(root)
    await updatePodmanStore(root, {add: [a]}, silentLogger())
    await updatePodmanStore(root, {remove: ['x.org/never-published:1']}, silentLogger())
    expect(await fingerprint(root)).toEqual(before)

    const imagesIno = (await stat(join(root, IMAGES_JSON))).ino
    await updatePodmanStore(root, {add: [await record('x.org/b:1', 'b')]}, silentLogger())
    expect((await stat(join(root, IMAGES_JSON))).ino).not.toBe(imagesIno)
    expect((await json(root, IMAGES_JSON)).map((i: {names: string[]}) => i.names)).toEqual([['x.org/a:1'], ['x.org/b:1']])
  })

  it('drops an image with its last name, then prunes its layer once the flat root is gone', async () => {
    const {root, record} = await repository()
    const a = await record('x.org/a:1', 'a')
    const b = await record('x.org/b:1', 'b')
    await updatePodmanStore(root, {add: [a, b]}, silentLogger())
    const layerA = flatLayerId(a.configDigest)
    const link = await readFile(join(root, PODMAN_STORE_DIR, 'overlay', layerA, 'link'), 'utf8')
    // rm passes link names; podman's spelling works as well.
    await updatePodmanStore(root, {remove: ['x.org/a:1']}, silentLogger())
    expect((await json(root, IMAGES_JSON)).map((i: {id: string}) => i.id)).toEqual([b.configDigest.slice(7)])
    await expect(lstat(join(root, PODMAN_STORE_DIR, 'overlay-images', a.configDigest.slice(7)))).rejects.toThrow()
    expect((await json(root, LAYERS_JSON)).map((l: {id: string}) => l.id)).toContain(layerA)

    await rm(join(root, flatRootRel(a.configDigest)), {recursive: true})
    await updatePodmanStore(root, {}, silentLogger())
    expect((await json(root, LAYERS_JSON)).map((l: {id: string}) => l.id)).toEqual([flatLayerId(b.configDigest)])
    await expect(lstat(join(root, PODMAN_STORE_DIR, 'overlay', layerA))).rejects.toThrow()
    await expect(lstat(join(root, PODMAN_STORE_DIR, 'overlay/l', link))).rejects.toThrow()
  })

  it('creates no store for a change that has nothing to put in one', async () => {
    const {root} = await repository()
    await updatePodmanStore(root, {remove: ['x.org/a:1']}, silentLogger())
    await expect(lstat(join(root, PODMAN_STORE_DIR))).rejects.toThrow()
  })

  it('keeps the short link another writer chose, and writes tokens into its empty lock files', async () => {
    const {root, record} = await repository()
    const a = await record('x.org/a:1', 'a')
    const layerId = flatLayerId(a.configDigest)
    const store = join(root, PODMAN_STORE_DIR)
    await mkdir(join(store, 'overlay', layerId), {recursive: true})
    await writeFile(join(store, 'overlay', layerId, 'link'), 'DUCCCHOSETHISLINKNAME12345')
    await mkdir(join(store, 'overlay-layers'), {recursive: true})
    await writeFile(join(store, 'overlay-layers/layers.lock'), '')
    await updatePodmanStore(root, {add: [a]}, silentLogger())
    expect(await readlink(join(store, 'overlay/l/DUCCCHOSETHISLINKNAME12345'))).toBe(`../${layerId}/diff`)
    expect(await readFile(join(root, LAYERS_LOCK), 'utf8')).toMatch(/^[a-f0-9]{64}$/)
  })

  it('refuses a store it cannot read, and a record whose blobs publish did not keep', async () => {
    const {root, record} = await repository()
    await mkdir(join(root, PODMAN_STORE_DIR, 'overlay-images'), {recursive: true})
    await writeFile(join(root, IMAGES_JSON), '{"not": "a list"}')
    const corrupt = await updatePodmanStore(root, {add: [await record('x.org/a:1', 'a')]}, silentLogger()).catch((e: unknown) => e)
    expect(corrupt).toBeInstanceOf(CvmfsOciError)
    expect((corrupt as CvmfsOciError).code).toBe('E_PODMAN_STORE_CORRUPT')

    const other = await repository()
    const orphan = {...(await other.record('x.org/a:1', 'a')), manifestDigest: digest('0')}
    const missing = await updatePodmanStore(other.root, {add: [orphan]}, silentLogger()).catch((e: unknown) => e)
    expect((missing as CvmfsOciError).code).toBe('E_PODMAN_STORE_BLOB')
  })
})

/** Every list of an update: key -> [first hex digit of the image id, its names]. */
function lists(update: StoreState): Record<string, [string, string[] | undefined][]> {
  const out: Record<string, [string, string[] | undefined][]> = {}
  for (const [key, images] of update.lists ?? new Map([['', update.images]])) out[key] = images.map((i) => [i.id[0]!, i.names])
  return out
}
const CONFIG_C = digest('c')
const CONFIG_D = digest('d')
const forArch = (arch: string, a: ImageAddition): ImageAddition => ({...a, arch})
const multi = (add: ImageAddition[], removeNames: string[] = [], deadLayers: string[] = []) => ({add, removeNames, deadLayers: new Set(deadLayers), defaultArch: 'amd64'})

describe('applyChange with multi-platform names: one image list per architecture', () => {
  const single = () => applyChange(empty(), change([addition('x.org/s:1', CONFIG_C, digest('4'))]))
  const both = (state: StoreState) =>
    applyChange(state, multi([forArch('amd64', addition('x.org/m:1', CONFIG_A, MANIFEST_A)), forArch('arm64:v8', addition('x.org/m:1', CONFIG_B, MANIFEST_B))]))

  it('gives each platform its own list, with every single-platform name in each, and the default list as images', () => {
    const update = both(single())
    expect(lists(update)).toEqual({
      amd64: [
        ['c', ['x.org/s:1']],
        ['a', ['x.org/m:1']],
      ],
      'arm64:v8': [
        ['c', ['x.org/s:1']],
        ['b', ['x.org/m:1']],
      ],
    })
    expect(update.images).toBe(update.lists!.get('amd64'))
    expect(update.writeImages.sort()).toEqual(['a'.repeat(64), 'b'.repeat(64)])
    // One layers.json for all lists.
    expect(update.layers.map((l) => l.id).sort()).toEqual([flatLayerId(CONFIG_A), flatLayerId(CONFIG_B), flatLayerId(CONFIG_C)].sort())
  })

  it('keeps the default list even when the name has no image for it', () => {
    const update = applyChange(single(), multi([forArch('arm64:v8', addition('x.org/m:1', CONFIG_B, MANIFEST_B)), forArch('s390x', addition('x.org/m:1', CONFIG_D, digest('5')))]))
    expect(Object.keys(lists(update)).sort()).toEqual(['amd64', 'arm64:v8', 's390x'])
    expect(lists(update).amd64).toEqual([['c', ['x.org/s:1']]])
  })

  it('is idempotent, and a later single-platform name goes into every list', () => {
    const once = both(single())
    const twice = both(once)
    expect(lists(twice)).toEqual(lists(once))
    const more = applyChange(twice, multi([addition('x.org/t:1', CONFIG_C, digest('4'))]))
    expect(lists(more)['arm64:v8']![0]).toEqual(['c', ['x.org/s:1', 'x.org/t:1']])
    expect(lists(more).amd64![0]).toEqual(['c', ['x.org/s:1', 'x.org/t:1']])
  })

  it('a new list gets the single-platform names, not the other multi-platform ones', () => {
    const update = applyChange(both(single()), multi([forArch('amd64', addition('x.org/n:1', CONFIG_A, MANIFEST_A)), forArch('s390x', addition('x.org/n:1', CONFIG_D, digest('5')))]))
    expect(lists(update).s390x).toEqual([
      ['c', ['x.org/s:1']],
      ['d', ['x.org/n:1']],
    ])
    expect(lists(update)['arm64:v8']).toEqual([
      ['c', ['x.org/s:1']],
      ['b', ['x.org/m:1']],
    ])
    expect(lists(update).amd64).toEqual([
      ['c', ['x.org/s:1']],
      ['a', ['x.org/m:1', 'x.org/n:1']],
    ])
  })

  it('re-publishing a name for fewer platforms takes it from the others', () => {
    const update = applyChange(both(single()), multi([forArch('amd64', addition('x.org/m:1', CONFIG_A, MANIFEST_A)), forArch('s390x', addition('x.org/m:1', CONFIG_D, digest('5')))]))
    expect(lists(update)).toEqual({
      amd64: [
        ['c', ['x.org/s:1']],
        ['a', ['x.org/m:1']],
      ],
      s390x: [
        ['c', ['x.org/s:1']],
        ['d', ['x.org/m:1']],
      ],
    })
    expect(update.droppedImages).toEqual(['b'.repeat(64)])
  })

  it('collapses to one list when the last multi-platform name goes, or becomes single-platform', () => {
    const removed = applyChange(both(single()), multi([], ['x.org/m:1']))
    expect(removed.lists).toBeUndefined()
    expect(lists(removed)).toEqual({'': [['c', ['x.org/s:1']]]})
    expect(removed.droppedImages.sort()).toEqual(['a'.repeat(64), 'b'.repeat(64)])
    // Their layers stay until their flat roots are gone.
    expect(removed.layers).toHaveLength(3)

    const plain = applyChange(both(single()), multi([addition('x.org/m:1', CONFIG_A, MANIFEST_A)]))
    expect(lists(plain)).toEqual({
      '': [
        ['c', ['x.org/s:1']],
        ['a', ['x.org/m:1']],
      ],
    })
    expect(plain.droppedImages).toEqual(['b'.repeat(64)])
  })

  it('prunes a dead layer only when no list uses it', () => {
    const state = both(single())
    const update = applyChange(state, multi([], [], [flatLayerId(CONFIG_B), flatLayerId(CONFIG_D)]))
    expect(update.layers.map((l) => l.id)).toContain(flatLayerId(CONFIG_B))
    const gone = applyChange(applyChange(state, multi([], ['x.org/m:1'])), multi([], [], [flatLayerId(CONFIG_B)]))
    expect(gone.layers.map((l) => l.id)).not.toContain(flatLayerId(CONFIG_B))
    expect(gone.droppedLayers).toEqual([flatLayerId(CONFIG_B)])
  })
})

describe('updatePodmanStore with multi-platform names, on disk', () => {
  const top = useTempDir('cvmfs-oci-store-multi-', 'all')

  async function repository(root: string) {
    const records: Record<string, ImageRecord> = {}
    for (const [c, arch] of [['a', 'amd64'], ['b', 'arm64:v8']] as const) {
      const config = Buffer.from(JSON.stringify({architecture: arch.split(':')[0], os: 'linux', rootfs: {type: 'layers', diff_ids: []}}))
      const manifest = Buffer.from(`manifest of ${c}`)
      const configDigest = `sha256:${sha(config.toString())}`
      await mkdir(join(root, flatRootRel(configDigest), 'etc'), {recursive: true})
      for (const data of [config, manifest]) {
        const file = join(root, blobRel(`sha256:${sha(data.toString())}`))
        await mkdir(dirname(file), {recursive: true})
        await writeFile(file, data)
      }
      const name = 'registry.hub.docker.com/library/m:1'
      records[arch] = {reference: name, name, arch, manifestDigest: `sha256:${sha(manifest.toString())}`, configDigest, platform: `linux/${arch.replace(':', '/')}`, size: 7, published: '2025-01-01T00:00:00Z', source: name}
    }
    return records
  }
  const IMAGES_DIR_ABS = (root: string) => join(root, PODMAN_STORE_DIR, 'overlay-images')

  it('makes images.json a variant link to per-architecture lists, with alias links and a default for plain file systems', async () => {
    const root = join(top(), 'r1')
    const records = await repository(root)
    await updatePodmanStore(root, {add: [records.amd64!, records['arm64:v8']!], defaultArch: 'amd64'}, silentLogger())
    const dir = IMAGES_DIR_ABS(root)
    expect(await readlink(join(dir, 'images.json'))).toBe('.multiarch/$(CVMFS_ARCH:-amd64)/images.json')
    const names = (list: {id: string; names: string[]}[]) => list.map((i) => [i.id, i.names])
    const read = async (rel: string) => JSON.parse(await readFile(join(dir, rel), 'utf8'))
    expect(names(await read('.multiarch/amd64/images.json'))).toEqual([[records.amd64!.configDigest.slice(7), ['docker.io/library/m:1']]])
    expect(names(await read('.multiarch/arm64:v8/images.json'))).toEqual([[records['arm64:v8']!.configDigest.slice(7), ['docker.io/library/m:1']]])
    expect(await readlink(join(dir, '.multiarch', 'x86_64'))).toBe('amd64')
    expect(await readlink(join(dir, '.multiarch', 'aarch64'))).toBe('arm64:v8')
    // Where no CVMFS client expands the link, the literal name leads to the default list.
    expect(await readlink(join(dir, '.multiarch', '$(CVMFS_ARCH:-amd64)'))).toBe('amd64')
    expect(names(await read('images.json'))).toEqual(names(await read('.multiarch/amd64/images.json')))
    const lock = await readFile(join(root, IMAGES_LOCK), 'utf8')
    expect(lock).toMatch(/^[a-f0-9]{64}$/)

    // Removing the name returns to one plain images.json.
    await updatePodmanStore(root, {remove: ['registry.hub.docker.com/library/m:1']}, silentLogger())
    expect((await lstat(join(dir, 'images.json'))).isFile()).toBe(true)
    expect(await read('images.json')).toEqual([])
    await expect(lstat(join(dir, '.multiarch'))).rejects.toThrow()
    expect(await readFile(join(root, IMAGES_LOCK), 'utf8')).not.toBe(lock)
  })
})

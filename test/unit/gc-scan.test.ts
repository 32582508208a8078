/**
 * What gc counts as garbage in a repository written the way DUCC writes them (relative,
 * pre-2019 absolute and variant links, .multiarch, .layers) plus our own records, built in
 * code: everything referenced stays, whatever the kind of link that references it.
 */
import {mkdir, readdir, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {findGarbage, lexicalTarget} from '../../src/gc/scan.js'
import {removeAndPrune} from '../../src/layout/remove.js'
import {useTempDir} from '../helpers/temp-dir.js'

const hex = (c: string) => c.repeat(64)
const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(hex) as [string, string, string, string, string]
const flat = (h: string) => `.flat/${h.slice(0, 2)}/${h}`

const root = useTempDir('cvmfs-oci-gc-scan-', 'all')
async function file(rel: string, content = ''): Promise<void> {
  await mkdir(dirname(join(root(), rel)), {recursive: true})
  await writeFile(join(root(), rel), content)
}
async function link(rel: string, target: string): Promise<void> {
  await mkdir(dirname(join(root(), rel)), {recursive: true})
  await symlink(target, join(root(), rel))
}
const manifest = (config: string, layers: string[]) => JSON.stringify({SchemaVersion: 2, Config: {Digest: `sha256:${config}`}, Layers: layers.map((l) => ({Digest: `sha256:${l}`, Size: 1}))})

beforeAll(async () => {
  for (const h of [A, B, C, D, E]) await file(`${flat(h)}/.cvmfscatalog`)
  await file(`${flat(A)}/bin/data`, '12345')
  await file('.flat/.cvmfscatalog')
  // A: a relative link, with DUCC's manifest and our record.
  await link('reg.io/team/x:1', `../../${flat(A)}`)
  await file('.metadata/reg.io/team/x:1/manifest.json', manifest(A, ['1'.repeat(64)]))
  await file('.metadata/reg.io/team/x:1/cvmfs-oci.json', JSON.stringify({manifestDigest: `sha256:${'9'.repeat(64)}`, configDigest: `sha256:${A}`}))
  await file(`.metadata/.blobs/sha256/${'9'.repeat(64)}`, '{}')
  await file(`.metadata/.blobs/sha256/${A}`, '{}')
  // B: an absolute link from a repository published before 2019.
  await link('reg.io/old:1', `/cvmfs/unpacked.example.org/${flat(B)}`)
  // C: a variant link to a .multiarch link.
  await link('reg.io/multi:1', '../.multiarch/$(CVMFS_ARCH:-amd64)/reg.io/multi:1')
  await link('.multiarch/amd64/reg.io/multi:1', `../../../${flat(C)}`)
  await file('.metadata/.multiarch/amd64/reg.io/multi:1/manifest.json', manifest(C, ['2'.repeat(64)]))
  // D: nothing points to it any more; its record and config blob go with it.
  await file(`.metadata/.flat/${D.slice(0, 2)}/${D}.json`, JSON.stringify({size: 4096}))
  await file(`.metadata/.blobs/sha256/${D}`, '{}')
  // E: only the podman store's layer points to it.
  await link(`podmanStore/overlay/${'f'.repeat(64)}/diff`, `../../../${flat(E)}`)
  // Metadata of a removed name, a layer only it listed, one still listed, an orphan multiarch entry.
  await file('.metadata/reg.io/gone:1/manifest.json', manifest(D, ['3'.repeat(64)]))
  for (const l of ['1', '2', '3']) await file(`.layers/${l}${l}/${l.repeat(64)}/layerfs/.cvmfscatalog`)
  await file('.metadata/.multiarch/arm64/reg.io/multi:1/manifest.json', manifest(C, []))
  // A flat root copied under a name (links inside it are image content, not references).
  await file('reg.io/copy:1/.cvmfscatalog')
  await link('reg.io/copy:1/bin/sh', `../../../${flat(D)}`)
})

describe('gc scan', () => {
  it('finds exactly what nothing references', async () => {
    const garbage = await findGarbage(root())
    expect(garbage.map((g) => `${g.kind} ${g.path}${g.name ? ` (${g.name})` : ''}`)).toEqual([
      'metadata .metadata/reg.io/gone:1 (reg.io/gone:1)',
      'metadata .metadata/.multiarch/arm64/reg.io/multi:1',
      `flat ${flat(D)}`,
      `flat ${flat(E)}`,
      `flat-record .metadata/.flat/dd/${D}.json`,
      `blob .metadata/.blobs/sha256/${D}`,
      `layer .layers/33/${'3'.repeat(64)}`,
    ])
    // Sizes: from our record when there is one, else counted.
    expect(garbage.find((g) => g.path === flat(D))?.bytes).toBe(4096)
  })

  it.each([
    ['reg.io/team/x:1', '../../.flat/aa/x', '.flat/aa/x'],
    ['reg.io/x:1', '/cvmfs/any.repo/.flat/aa/x', '.flat/aa/x'],
    ['reg.io/x:1', '/srv/elsewhere', undefined],
    ['reg.io/x:1', '../.multiarch/$(CVMFS_ARCH:-amd64)/reg.io/x:1', undefined],
    ['reg.io/x:1', '../../../../outside', '../../../outside'],
  ])('%s -> %s reads as %s', (linkRel, target, expected) => {
    expect(lexicalTarget(linkRel, target)).toBe(expected)
  })

  it('removes a path and the parents it leaves empty, never an area of the layout', async () => {
    await removeAndPrune(root(), '.metadata/reg.io/gone:1')
    await removeAndPrune(root(), '.metadata/.multiarch/arm64/reg.io/multi:1')
    await removeAndPrune(root(), flat(D))
    const after = await findGarbage(root())
    expect(after.map((g) => g.kind)).toEqual(['flat', 'flat-record', 'blob', 'layer'])
    expect((await readdir(join(root(), '.metadata'))).sort()).toEqual(['.blobs', '.flat', '.multiarch', 'reg.io'])
    expect(await readdir(join(root(), '.metadata/.multiarch'))).toEqual(['amd64'])
    expect((await readdir(join(root(), '.flat'))).sort()).toEqual(['.cvmfscatalog', 'aa', 'bb', 'cc', 'ee'])
  })
})

/**
 * Where a flat root gets nested catalogs: the cut (pure, tables of trees built in code:
 * exactly the threshold, chains of single-child directories, a root under it, markers the
 * image holds), the walk on real directories, the markers it writes (never through a
 * symlink the image put in the way), and how long the walk takes on a 30 000-entry tree.
 */
import {link, lstat, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile} from 'node:fs/promises'
import {closeSync, existsSync, mkdirSync, openSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {addNestedCatalogs, countTree, cutCatalogs, MIN_CATALOG_WEIGHT, writeRootMarker, type DirCounts} from '../../src/layout/nested-catalogs.js'
import {useTempDir} from '../helpers/temp-dir.js'

/** A directory with `others` non-directory entries and these subdirectories. */
function dir(others: number, dirs: Record<string, DirCounts> = {}, marked = false): DirCounts {
  return {others, dirs: new Map(Object.entries(dirs)), ...(marked ? {marked} : {})}
}

/** A chain of `depth` single-child directories `c/c/…`, the last holding `files` entries. */
function chain(depth: number, files: number): DirCounts {
  let node = dir(files)
  for (let i = 1; i < depth; i++) node = dir(0, {c: node})
  return node
}

const paths = (root: DirCounts, min?: number) => cutCatalogs(root, min).cuts.map((c) => c.path)

describe('cutCatalogs', () => {
  it('uses CernVM-FS autocatalogs’ minimum weight by default', () => {
    expect(MIN_CATALOG_WEIGHT).toBe(1000)
  })

  it('cuts a directory of weight exactly 1000 (itself and 999 entries), not one of 999', () => {
    expect(cutCatalogs(dir(5, {a: dir(999), b: dir(998)}))).toEqual({cuts: [{path: 'a', weight: 1000}], rootWeight: 1 + 5 + 1 + 999})
  })

  it('never cuts the root, however big, and leaves a root under the threshold alone', () => {
    expect(cutCatalogs(dir(50_000))).toEqual({cuts: [], rootWeight: 50_001})
    expect(cutCatalogs(dir(10, {a: dir(300, {b: dir(300)}), c: dir(300)}))).toEqual({cuts: [], rootWeight: 1 + 10 + 1 + 300 + 301 + 301})
  })

  it('cuts a chain of single-child directories once, at its deepest heavy enough directory', () => {
    // c/c/…/c (10 deep) holding 1200 files: the last c weighs 1201 and is cut; above it
    // each c weighs one more than its child (2, 3, … 10 for the top one).
    const {cuts, rootWeight} = cutCatalogs(dir(0, {c: chain(10, 1200)}))
    expect(cuts).toEqual([{path: Array(10).fill('c').join('/'), weight: 1201}])
    expect(rootWeight).toBe(1 + 10)
    // A chain whose leaf is light but that adds up to 1000 on the way: cut where it does.
    // Leaf 990 files: weighs 991; each level above adds 1 (itself): the 10th from the bottom weighs 1000.
    expect(paths(dir(0, {c: chain(15, 990)}))).toEqual([Array(6).fill('c').join('/')])
  })

  it('cuts bottom-up: a cut child counts as one entry of its parent', () => {
    // usr/share/big/{a: 1100 files, b: 14 dirs of 100}, usr/share/edge: 998 files (999, not
    // cut), usr/share/small: 20: a and b are cut; usr/share then weighs 1 + 1 + (1+50+1+1) + 999 + 21 = 1075: cut too.
    const b = dir(0, Object.fromEntries(Array.from({length: 14}, (_, i) => [`d${i}`, dir(100)])))
    const tree = dir(3, {usr: dir(0, {share: dir(1, {big: dir(50, {a: dir(1100), b}), edge: dir(998), small: dir(20)})})})
    expect(cutCatalogs(tree)).toEqual({
      cuts: [
        {path: 'usr/share', weight: 1075},
        {path: 'usr/share/big/a', weight: 1101},
        {path: 'usr/share/big/b', weight: 1 + 14 * 101},
      ],
      rootWeight: 1 + 3 + 2,
    })
  })

  it('takes a directory the image marked itself as a catalog: not cut again, one entry of its parent, cut below', () => {
    const tree = dir(0, {opt: dir(0, {own: dir(1500, {deep: dir(1200)}, true), next: dir(500)})})
    expect(cutCatalogs(tree)).toEqual({cuts: [{path: 'opt/own/deep', weight: 1201}], rootWeight: 1 + 1 + 1 + 501})
    // Without the image's marker, own would be cut.
    expect(paths(dir(0, {opt: dir(0, {own: dir(1500, {deep: dir(1200)}), next: dir(500)})}))).toEqual(['opt/own', 'opt/own/deep'])
  })

  it('takes another threshold, and any depth without exhausting the stack', () => {
    expect(paths(dir(0, {a: dir(9), b: dir(8)}), 10)).toEqual(['a'])
    expect(cutCatalogs(dir(0, {c: chain(100_000, 0)})).cuts).toHaveLength(100)
  })
})

describe('on a real tree', () => {
  const work = useTempDir('cvmfs-oci-nested-', 'all')

  /** `n` empty files in `dirPath` (synchronous calls: a tenth of the time of awaited ones here). */
  function files(dirPath: string, n: number): void {
    mkdirSync(dirPath, {recursive: true})
    for (let i = 0; i < n; i++) closeSync(openSync(join(dirPath, `f${i}`), 'w'))
  }

  it('counts with one readdir per directory, writes the markers, keeps the directories’ mtimes, and reports them as added', async () => {
    const root = join(work(), 'tree')
    files(join(root, 'usr/lib/big'), 1100)
    files(join(root, 'usr/lib/small'), 10)
    await symlink('big', join(root, 'usr/lib/link'))
    files(join(root, 'own'), 3)
    await writeFile(join(root, 'own/.cvmfscatalog'), 'the image’s own\n')
    const when = new Date('2020-02-02T00:00:00Z')
    await utimes(join(root, 'usr/lib/big'), when, when)

    expect(countTree(root)).toEqual(
      dir(0, {
        usr: dir(0, {lib: dir(1, {big: dir(1100), small: dir(10)})}),
        own: dir(4, {}, true),
      }),
    )
    const result = await addNestedCatalogs(root)
    expect(result).toEqual({added: ['usr/lib/big/.cvmfscatalog'], cuts: [{path: 'usr/lib/big', weight: 1101}], rootWeight: 1 + (1 + (1 + 1 + 1 + 11)) + 1})
    expect((await lstat(join(root, 'usr/lib/big/.cvmfscatalog'))).size).toBe(0)
    expect((await lstat(join(root, 'usr/lib/big'))).mtime).toEqual(when)
    // The image's own marker is left as it was.
    expect(await readFile(join(root, 'own/.cvmfscatalog'), 'utf8')).toBe('the image’s own\n')
  })

  it.each([
    ['symlink', (path: string) => symlink('/etc/passwd', path)],
    ['directory', (path: string) => mkdir(path)],
  ])('refuses an image with a %s named .cvmfscatalog (CernVM-FS cannot publish it), naming it', async (kind, make) => {
    const root = join(work(), `refuse-${kind}`)
    files(join(root, 'usr/bin'), 2)
    await make(join(root, 'usr/bin/.cvmfscatalog'))
    expect(() => countTree(root)).toThrow(expect.objectContaining({code: 'E_CATALOG_MARKER', message: expect.stringContaining(`${kind} named usr/bin/.cvmfscatalog`)}))
  })

  it('writes the root marker, never through a symlink the image put there', async () => {
    const victim = join(work(), 'victim')
    await writeFile(victim, 'precious\n')
    const hostile = join(work(), 'hostile-root')
    await mkdir(hostile)
    await symlink(victim, join(hostile, '.cvmfscatalog'))
    await expect(writeRootMarker(hostile)).rejects.toMatchObject({code: 'E_CATALOG_MARKER'})
    expect(await readFile(victim, 'utf8')).toBe('precious\n')

    const plain = join(work(), 'plain-root')
    await mkdir(plain)
    await writeRootMarker(plain)
    expect((await lstat(join(plain, '.cvmfscatalog'))).isFile()).toBe(true)
    // The image's own regular file there: emptied, as always.
    await writeFile(join(plain, '.cvmfscatalog'), 'x')
    await writeRootMarker(plain)
    expect(await readFile(join(plain, '.cvmfscatalog'), 'utf8')).toBe('')
    // …and when it is a hardlink to another file (of the image, or of a root it was cloned
    // from), that file keeps its content.
    await rm(join(plain, '.cvmfscatalog'))
    await writeFile(join(plain, 'passwd'), 'root:x:0:0\n')
    await link(join(plain, 'passwd'), join(plain, '.cvmfscatalog'))
    await writeRootMarker(plain)
    expect(await readFile(join(plain, '.cvmfscatalog'), 'utf8')).toBe('')
    expect(await readFile(join(plain, 'passwd'), 'utf8')).toBe('root:x:0:0\n')
  })

  it('cuts a 30 000-entry tree as a Python image spreads it', async () => {
    // 30 directories of 10 subdirectories of 100 files (30 330 entries), as a Python image
    // spreads them; on tmpfs where there is one (making 30 000 files on this machine's
    // disk takes 20 s; walking them there took 30-70 ms).
    const scratch = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'cvmfs-oci-nested-'))
    const root = join(scratch, 'big')
    for (let a = 0; a < 30; a++) for (let b = 0; b < 10; b++) files(join(root, `a${a}`, `b${b}`), 100)
    const cut = cutCatalogs(countTree(root))
    // Each a<N> weighs 1 + 10 × 101 = 1011: cut; the root keeps itself and 30 of them.
    expect(cut.cuts).toHaveLength(30)
    expect(cut.rootWeight).toBe(31)
    await rm(scratch, {recursive: true, force: true})
  })
})

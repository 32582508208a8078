/**
 * Security regressions: layers built to escape the image root. Each must be
 * rejected with a verification error (exit 4), leave the repository exactly as
 * it was, and write nothing outside it. Named after the threat, as node-tar does.
 */
import {lstat, mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {cli, cliOk} from '../helpers/cli.js'
import {writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import type {TarEntry} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

/** The outside world an escaping entry would reach: a sibling of the repository. */
const VICTIM = 'victim'

function image(...hostile: TarEntry[][]): ImageSpec {
  return {layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/ok', content: 'fine\n'}]}, ...hostile.map((entries) => ({entries}))]}
}

const cases: {threat: string; code: string; spec: (victim: string) => ImageSpec}[] = [
  {threat: 'path traversal with ..', code: 'E_HOSTILE_TRAVERSAL', spec: () => image([{name: `../../${VICTIM}/pwned`, content: 'x'}])},
  {threat: 'traversal hidden mid-path', code: 'E_HOSTILE_TRAVERSAL', spec: () => image([{name: `etc/../../../${VICTIM}/pwned`, content: 'x'}])},
  {threat: 'absolute path', code: 'E_HOSTILE_ABSOLUTE', spec: (victim) => image([{name: `${victim}/pwned`, content: 'x'}])},
  {
    threat: 'write through a symlink that climbs out',
    code: 'E_HOSTILE_SYMLINK_ESCAPE',
    spec: () => image([{name: 'escape', type: 'symlink', linkname: `../../../../../../../..${'/..'.repeat(8)}/tmp`}, {name: 'escape/pwned', content: 'x'}]),
  },
  {
    threat: 'write through a symlink planted in a lower layer',
    code: 'E_HOSTILE_SYMLINK_ESCAPE',
    spec: () => image([{name: 'etc/up', type: 'symlink', linkname: '../../../../../../../../../../..'}], [{name: 'etc/up/pwned', content: 'x'}]),
  },
  {threat: 'hardlink to a path outside', code: 'E_HOSTILE_TRAVERSAL', spec: () => image([{name: 'steal', type: 'link', linkname: '../../../etc/passwd'}])},
  {threat: 'hardlink to an absolute path', code: 'E_HOSTILE_ABSOLUTE', spec: () => image([{name: 'steal', type: 'link', linkname: '/etc/passwd'}])},
  {
    threat: 'hardlink through a symlink that climbs out',
    code: 'E_HOSTILE_SYMLINK_ESCAPE',
    spec: () => image([{name: 'up', type: 'symlink', linkname: '../../../../../../../../../..'}, {name: 'steal', type: 'link', linkname: 'up/etc/passwd'}]),
  },
  {threat: 'hardlink to a directory', code: 'E_HOSTILE_HARDLINK_DIR', spec: () => image([{name: 'etcdir', type: 'link', linkname: 'etc'}])},
  {threat: 'whiteout of the parent directory', code: 'E_HOSTILE_WHITEOUT', spec: () => image([{name: 'etc/.wh...', content: ''}])},
  {
    // publish writes the root's catalog marker: never through a link the image put there.
    threat: 'truncate a publisher file through a symlink named .cvmfscatalog',
    code: 'E_CATALOG_MARKER',
    spec: (victim) => image([{name: '.cvmfscatalog', type: 'symlink', linkname: `${victim}/precious`}]),
  },
]

describe('hostile layers are rejected and change nothing', () => {
  const work = useTempDir('cvmfs-oci-hostile-', 'all')
  let repo: string
  let victim: string
  let before: Awaited<ReturnType<typeof snapshotTree>>
  beforeAll(async () => {
    requireTools('skopeo')
    repo = join(work(), 'repo')
    victim = join(work(), VICTIM)
    await mkdir(victim)
    await writeFile(join(victim, 'precious'), 'do not touch\n')
    // A repository that already holds an image: it must survive every attack intact.
    const layout = join(work(), 'good')
    await writeOciLayout(layout, [{tag: '1', image: image()}])
    const ref = await pushLayout(layout, '1', registryAddress(), 'hostile/good:1')
    await cliOk(['publish', '--root', repo, '--tls-verify=false', ref])
    before = await snapshotTree(repo)
  })

  it.each(cases)('$threat', async ({spec, code}) => {
    const name = code.toLowerCase().replaceAll('_', '-')
    const layout = join(work(), `layout-${name}-${Math.random().toString(36).slice(2)}`)
    await writeOciLayout(layout, [{tag: '1', image: spec(victim)}])
    const ref = await pushLayout(layout, '1', registryAddress(), `hostile/${name}:1`)
    const result = await cli(['publish', '--root', repo, '--tls-verify=false', ref])
    expect(result.exitCode, result.stderr).toBe(4)
    expect(result.stderr).toContain(`Code: ${code}`)
    expect(result.stderr).toMatch(/rejected|hardlink|symlink|\.\./)
    // Nothing outside …
    expect((await readdir(victim)).sort()).toEqual(['precious'])
    expect(await readFile(join(victim, 'precious'), 'utf8')).toBe('do not touch\n')
    await expect(lstat('/tmp/pwned')).rejects.toThrow()
    // … and the repository exactly as it was (no staging left, no link, no metadata).
    expect(diffTrees(before, await snapshotTree(repo))).toEqual([])
  })

  // (Last: it publishes.) An image on the published one's layer, whose own layer makes its
  // .cvmfscatalog a hardlink to a file of that layer: its root starts from a clone of the
  // published root, whose files it shares, and emptying the marker in place would empty
  // the published image's file too.
  it('a catalog marker hardlinked to a file of a published root leaves that root intact', async () => {
    const published = (await cliOk(['resolve', '--root', repo, `${registryAddress()}/hostile/good:1`])).trim()
    const kept = await snapshotTree(published)
    const layout = join(work(), 'layout-marker-link')
    await writeOciLayout(layout, [{tag: '1', image: image([{name: '.cvmfscatalog', type: 'link', linkname: 'etc/ok'}])}])
    const ref = await pushLayout(layout, '1', registryAddress(), 'hostile/marker-link:1')
    const result = await cli(['publish', '--root', repo, '--tls-verify=false', '--debug', ref])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stderr).toContain('starting from .flat/')
    expect(diffTrees(kept, await snapshotTree(published))).toEqual([])
    expect(await readFile(join(published, 'etc/ok'), 'utf8')).toBe('fine\n')
    const flat = (await cliOk(['resolve', '--root', repo, ref])).trim()
    expect(await readFile(join(flat, 'etc/ok'), 'utf8')).toBe('fine\n')
    expect(await readFile(join(flat, '.cvmfscatalog'), 'utf8')).toBe('')
  })
})

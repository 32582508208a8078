/**
 * The pure rules behind the CVMFS backends, sync and gc, as tables: how narrow a
 * transaction can be, how `cvmfs_server list` is read, durations, wish list entries.
 */
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {serverConfSettings} from '../../src/backends/cvmfs-server.js'
import {aboveScope, commonPath, inScope, transactionScope} from '../../src/backends/scope.js'
import {formatDuration, parseDuration} from '../../src/gc/duration.js'
import {parseWish, parseWishlist} from '../../src/sync/wishlist.js'
import {useTempDir} from '../helpers/temp-dir.js'

describe('transaction scope', () => {
  it.each([
    {paths: ['.flat/ab/abc'], common: '.flat/ab/abc'},
    {paths: ['.flat/ab/abc', '.flat/ab/abc/etc/x'], common: '.flat/ab/abc'},
    {paths: ['.flat/ab/abc', '.flat/cd/cde'], common: '.flat'},
    {paths: ['.flat/ab/abc', '.metadata/.flat/ab/abc.json'], common: ''},
    {paths: ['.flat/ab/abc', 'reg.io/x:1', '.metadata/reg.io/x:1'], common: ''},
    {paths: ['reg.io/team/x:1', 'reg.io/team/y:1'], common: 'reg.io/team'},
    {paths: ['top'], common: 'top'},
    {paths: ['/a/b/../c/d'], common: 'a/c/d'},
    {paths: [''], common: ''},
    {paths: ['.', 'a/b'], common: ''},
    {paths: [], common: ''},
  ])('$paths → "$common"', ({paths, common}) => {
    expect(commonPath(paths)).toBe(common)
  })

  const root = useTempDir('cvmfs-oci-scope-', 'all')
  beforeAll(async () => {
    await mkdir(join(root(), '.flat', 'ab'), {recursive: true})
    await writeFile(join(root(), 'file'), '')
  })

  it('walks up until the parent is a directory that exists (the server refuses another)', async () => {
    expect(await transactionScope(root(), ['.flat/ab/abc'])).toBe('.flat/ab/abc')
    expect(await transactionScope(root(), ['.flat/cd/cde'])).toBe('.flat/cd')
    expect(await transactionScope(root(), ['.metadata/.flat/cd/cde.json'])).toBe('.metadata')
    expect(await transactionScope(root(), ['file/below'])).toBe('file')
    expect(await transactionScope(root(), ['podmanStore'])).toBe('podmanStore')
    expect(await transactionScope(root(), ['.flat/ab/x', 'reg.io/x:1'])).toBeUndefined()
    expect(await transactionScope(root(), [''])).toBeUndefined()
  })

  it.each([
    {path: '.flat/ab/abc/etc', scope: '.flat/ab/abc', inside: true, above: false},
    {path: '.flat/ab/abc', scope: '.flat/ab/abc', inside: true, above: false},
    {path: '.flat/ab/abcd', scope: '.flat/ab/abc', inside: false, above: false},
    {path: '.flat/ab', scope: '.flat/ab/abc', inside: false, above: true},
    {path: '.flat', scope: '.flat/ab/abc', inside: false, above: true},
    {path: '.fla', scope: '.flat/ab/abc', inside: false, above: false},
    {path: 'anything', scope: undefined, inside: true, above: false},
  ])('$path in lease $scope: inside $inside, above $above', ({path, scope, inside, above}) => {
    expect(inScope(path, scope)).toBe(inside)
    expect(aboveScope(path, scope)).toBe(above)
  })
})

describe('server.conf, as cvmfs_server sources it', () => {
  it('reads plain and quoted assignments, and nothing else', () => {
    const text = ['# made by cvmfs_server mkfs', 'CVMFS_REPOSITORY_NAME=test.local', 'CVMFS_REPOSITORY_TYPE=stratum0', 'CVMFS_SPOOL_DIR="/var/spool/cvmfs/test.local"', "export CVMFS_USER='root'", 'if [ -x /x ]; then', '  CVMFS_UPSTREAM_STORAGE = nope', ''].join('\n')
    expect(serverConfSettings(text)).toEqual({
      CVMFS_REPOSITORY_NAME: 'test.local',
      CVMFS_REPOSITORY_TYPE: 'stratum0',
      CVMFS_SPOOL_DIR: '/var/spool/cvmfs/test.local',
      CVMFS_USER: 'root',
    })
  })
})

describe('durations', () => {
  it.each([
    ['0', 0],
    ['90', 90_000],
    ['90s', 90_000],
    ['15m', 900_000],
    ['36h', 129_600_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1d12h', 129_600_000],
    ['1.5h', 5_400_000],
  ])('%s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })
  it.each(['', 'soon', '7 days', '-1d', '1x', 'd7'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(expect.objectContaining({code: 'E_BAD_DURATION', exitCode: 2}))
  })
  it('formats in the largest whole unit', () => {
    expect([0, 90_000, 3_600_000, 604_800_000, 129_600_000].map(formatDuration)).toEqual(['0s', '90s', '1h', '7d', '36h'])
  })
})

describe('wish list entries', () => {
  it.each([
    {input: 'https://registry.hub.docker.com/library/centos:centos7', ref: {registry: 'docker.io', repository: 'library/centos', tag: 'centos7'}, insecure: false},
    {input: 'registry.example.org/sci/app:2', ref: {registry: 'registry.example.org', repository: 'sci/app', tag: '2'}, insecure: false},
    {input: 'http://127.0.0.1:5000/x/y', ref: {registry: '127.0.0.1:5000', repository: 'x/y', tag: 'latest'}, insecure: true},
    {input: `https://quay.io/a/b@sha256:${'1'.repeat(64)}`, ref: {registry: 'quay.io', repository: 'a/b', digest: `sha256:${'1'.repeat(64)}`}, insecure: false},
  ])('$input', ({input, ref, insecure}) => {
    const wish = parseWish(input)
    expect(wish.reference).toEqual(ref)
    expect(wish.insecure).toBe(insecure)
    expect(wish.tagPattern).toBeUndefined()
  })

  it('reads * and ? in a tag as a pattern over the tag list, and only there', () => {
    const wish = parseWish('https://registry.hub.docker.com/atlas/analysisbase:21.2.1*')
    expect(wish.reference).toMatchObject({registry: 'docker.io', repository: 'atlas/analysisbase', tag: '21.2.1*'})
    expect(['21.2.1', '21.2.10', '21.2.1-x', '21.2.2', '121.2.1'].filter((t) => wish.tagPattern!.test(t))).toEqual(['21.2.1', '21.2.10', '21.2.1-x'])
    expect(parseWish('r.io/x:v?').tagPattern!.test('v1')).toBe(true)
    expect(() => parseWish('r.io/x*:1')).toThrow(/invalid image reference/)
    expect(() => parseWish(`r.io/x:1*@sha256:${'2'.repeat(64)}`)).toThrow(/cannot go with a digest/)
    expect(() => parseWish('ftp://r.io/x:1')).toThrow(/unsupported scheme ftp/)
  })

  it("accepts DUCC's recipe, thin-image fields included, and names the line of each problem", () => {
    const good = parseWishlist(['version: 1', 'user: cvmfsunpacker', "cvmfs_repo: 'unpacked.cern.ch'", "output_format: 'x/$(image)'", 'input:', "  - 'r.io/a:1'", "  - 'r.io/b:*'", ''].join('\n'), 'w.yaml')
    expect(good.repository).toBe('unpacked.cern.ch')
    expect(good.wishes.map((w) => [w.input, w.line])).toEqual([
      ['r.io/a:1', 6],
      ['r.io/b:*', 7],
    ])
    const problems = (text: string) => {
      try {
        parseWishlist(text, 'w.yaml')
      } catch (error) {
        expect(error).toMatchObject({code: 'E_BAD_WISHLIST', exitCode: 2})
        return (error as Error).message.split('\n').slice(1).map((l) => l.trim())
      }
      throw new Error('no error')
    }
    expect(problems(['version: 1', 'cvmfs_repo: x', 'input:', '  - r.io/a:1', '  - 7', '  - r.io/B:1', ''].join('\n'))).toEqual(['w.yaml:5:5: /input/1: must be string (got 7)'])
    expect(problems(['version: 1', 'cvmfs_repo: x', 'input:', '  - r.io/a:1', '  - r.io/B:1', ''].join('\n'))).toEqual([
      expect.stringMatching(/^w\.yaml:5:5: \/input\/1: invalid image reference "r\.io\/B:1"/),
    ])
    expect(problems(['cvmfs_repo: x', 'input: []', ''].join('\n'))).toEqual([
      'w.yaml:1:1: /version: is required but missing',
      expect.stringMatching(/^w\.yaml:2:8: \/input: must NOT have fewer than 1 items/),
    ])
    expect(problems('version: 1\ninput: [a\n')[0]).toMatch(/^w\.yaml:\d+:\d+: /)
    // minLength, which the validator checks through ajv's runtime helper (scripts/compile-schemas.mjs imports it).
    expect(problems(['version: 1', 'cvmfs_repo: x', 'input:', "  - ''", ''].join('\n'))).toEqual(['w.yaml:4:5: /input/0: must NOT have fewer than 1 characters (got "")'])
  })
})

/**
 * The rules cvmfs-oci keeps beside other publishers of a gateway (src/backends/cvmfs-gateway.ts),
 * on real files: server.conf and manifest reading, and what a transaction's upper directory
 * says it wrote — inside its lease, above it (copied-up parents), outside it (what the
 * gateway would drop without a word), deleted (overlayfs whiteouts: character devices 0/0).
 */
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {missingFrom, parseManifest, scanChanges} from '../../src/backends/cvmfs-gateway.js'
import {parseServerConf} from '../../src/backends/cvmfs-server.js'
import {exec} from '../helpers/exec.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

describe('server.conf', () => {
  it('names the gateway of a gateway publisher, and none of a stratum-0', () => {
    const gateway = parseServerConf(
      [
        'CVMFS_REPOSITORY_NAME=gw.test',
        'CVMFS_SPOOL_DIR=/var/spool/cvmfs/gw.test',
        'CVMFS_STRATUM0=http://gw.example.org:8000/cvmfs/gw.test',
        'CVMFS_UPSTREAM_STORAGE=gw,/srv/cvmfs/gw.test/data/txn,http://gw.example.org:4929/api/v1',
      ].join('\n'),
      'gw.test',
    )
    expect(gateway).toEqual({spoolDir: '/var/spool/cvmfs/gw.test', stratum0: 'http://gw.example.org:8000/cvmfs/gw.test', gatewayUrl: 'http://gw.example.org:4929/api/v1'})
    const local = parseServerConf("CVMFS_UPSTREAM_STORAGE=local,/srv/cvmfs/s0.test/data/txn,/srv/cvmfs/s0.test\nCVMFS_STRATUM0='http://localhost/cvmfs/@fqrn@'\n", 's0.test')
    expect(local).toEqual({spoolDir: '/var/spool/cvmfs/s0.test', stratum0: 'http://localhost/cvmfs/s0.test', gatewayUrl: undefined})
  })

  it('reads the root catalog and revision of a manifest, not its signature', () => {
    const manifest = `C0dff0d5ef710d46228b5558450d8424dd47a9dc8\nB57344\nS9\nNgw.test\n--\n${'f'.repeat(40)}\nS12\n`
    expect(parseManifest(manifest)).toEqual({rootHash: '0dff0d5ef710d46228b5558450d8424dd47a9dc8', revision: 9})
    expect(parseManifest('<html>not found</html>')).toBeUndefined()
  })
})

describe('what a transaction wrote, from its upper directory', () => {
  const spool = useTempDir('cvmfs-oci-scratch-', 'all')
  let upper: string
  beforeAll(async () => {
    requireTools('mknod')
    if (process.getuid?.() !== 0) throw new Error('this test makes overlayfs whiteouts (character devices 0/0): run it as root, as the suite runs')
    upper = join(spool(), 'scratch', 'current')
    const hex = 'ab'.repeat(32)
    await mkdir(join(upper, '.flat', 'ab', hex, 'etc'), {recursive: true})
    await writeFile(join(upper, '.flat', 'ab', hex, 'etc', 'x'), 'x')
    await symlink('x', join(upper, '.flat', 'ab', hex, 'etc', 'link'))
    await exec('mknod', [join(upper, '.flat', 'ab', hex, 'gone'), 'c', '0', '0'])
    await mkdir(join(upper, '.flat', 'cd'))
    await mkdir(join(upper, 'outside'))
    await writeFile(join(upper, 'outside', 'o'), 'o')
    await exec('mknod', [join(upper, 'deleted-outside'), 'c', '0', '0'])
  })

  it('inside the lease: written and deleted; above it: nothing; beside it: outside', async () => {
    const hex = 'ab'.repeat(32)
    const changes = await scanChanges(spool(), `.flat/ab/${hex}`)
    expect(changes.written.sort((x, y) => x.path.localeCompare(y.path))).toEqual([
      {path: `.flat/ab/${hex}`, type: 'directory'},
      {path: `.flat/ab/${hex}/etc`, type: 'directory'},
      {path: `.flat/ab/${hex}/etc/link`, type: 'symlink'},
      {path: `.flat/ab/${hex}/etc/x`, type: 'file'},
    ])
    expect(changes.deleted).toEqual([`.flat/ab/${hex}/gone`])
    expect(changes.outside.sort()).toEqual(['.flat/cd', 'deleted-outside', 'outside'])
  })

  it('a lease on the whole repository holds everything', async () => {
    const changes = await scanChanges(spool(), undefined)
    expect(changes.outside).toEqual([])
    expect(changes.deleted.sort()).toEqual([`.flat/ab/${'ab'.repeat(32)}/gone`, 'deleted-outside'])
  })

  it('reads back: what is missing, or of another type', async () => {
    const hex = 'ab'.repeat(32)
    const written = (await scanChanges(spool(), `.flat/ab/${hex}`)).written
    expect(await missingFrom(upper, written)).toEqual([])
    const elsewhere = await mkdtemp(join(tmpdir(), 'cvmfs-oci-readback-'))
    try {
      await mkdir(join(elsewhere, '.flat', 'ab', hex, 'etc'), {recursive: true})
      await mkdir(join(elsewhere, '.flat', 'ab', hex, 'etc', 'x'))
      expect((await missingFrom(elsewhere, written)).sort()).toEqual([`.flat/ab/${hex}/etc/link`, `.flat/ab/${hex}/etc/x`])
    } finally {
      await rm(elsewhere, {recursive: true, force: true})
    }
  })
})

/**
 * The merge as a publisher without root runs it: owners are not kept, device nodes
 * and FIFOs are skipped with a warning naming them, and only user.* attributes are
 * set. (The code path is chosen by `isRoot`; the suite itself runs as root.)
 */
import {createHash} from 'node:crypto'
import {lstat, mkdir, readdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Writable} from 'node:stream'

import {describe, expect, it} from 'vitest'

import {Logger} from '../../src/log.js'
import {mergeLayers} from '../../src/unpack/merge.js'
import {exec} from '../helpers/exec.js'
import {buildTar, fileCapability} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('merge without root', () => {
  const dir = useTempDir('cvmfs-oci-unpriv-', 'all')

  it('skips devices and FIFOs with a warning naming them, keeps user.* xattrs only', async () => {
    const tar = await buildTar([
      {name: 'dev/', type: 'directory'},
      {name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3},
      {name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0},
      {name: 'run/', type: 'directory'},
      {name: 'run/fifo', type: 'fifo'},
      {name: 'bin/', type: 'directory'},
      {name: 'bin/ping', content: 'x', mode: 0o4755, uid: 1234, gid: 1234, xattrs: {'security.capability': fileCapability(['cap_net_raw']), 'user.kept': Buffer.from('yes')}},
    ])
    const blob = join(dir(), 'layer.tar')
    await writeFile(blob, tar)
    const root = join(dir(), 'root')
    await mkdir(root)
    let log = ''
    const logger = new Logger({stream: new Writable({write: (c, _e, cb) => ((log += String(c)), cb())}), level: 'info'})
    const stats = await mergeLayers({
      root,
      workDir: dir(),
      logger,
      isRoot: false,
      layers: [{blobPath: blob, expect: {digest: sha(tar), size: tar.length, diffId: sha(tar), label: '1/1'}}],
    })
    expect(stats.skipped.sort()).toEqual(['/dev/null', '/dev/sda', '/run/fifo'])
    expect(log).toContain('device nodes and FIFOs were skipped: /dev/null, /dev/sda, /run/fifo')
    expect(log).toContain('security.capability of /bin/ping is not kept')
    expect(await readdir(join(root, 'dev'))).toEqual([])
    const ping = await lstat(join(root, 'bin/ping'))
    expect(ping.uid).toBe(process.getuid!())
    expect(ping.mode & 0o7777).toBe(0o4755)
    const {stdout} = await exec('getfattr', ['--absolute-names', '-d', '-m', '-', join(root, 'bin/ping')])
    expect(stdout).toContain('user.kept="yes"')
    expect(stdout).not.toContain('security.capability')
  })
})

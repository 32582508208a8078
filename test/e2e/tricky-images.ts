/**
 * Images made to exercise every rule of the layer merge at once. Shared by the
 * umoci oracle test and the benchmarks' correctness checks.
 */
import {fileCapability} from '../helpers/tar.js'
import type {ImageSpec} from '../helpers/oci-layout.js'

const LONG_DIR = `long/${'d'.repeat(120)}`
export const LONG_NAME = `${LONG_DIR}/${'f'.repeat(150)}`
export const NON_ASCII = 'données/naïve-文件 ü.txt'

/** Four layers: whiteouts, opaque dirs, hardlinks across layers, type changes, special bits, xattrs, long and non-ASCII names, an empty layer. */
export function trickyImage(): ImageSpec {
  return {
    config: {Env: ['PATH=/usr/bin:/bin', 'TRICKY=1'], WorkingDir: '/srv', Cmd: ['/usr/bin/tool']},
    layers: [
      {
        compression: 'gzip',
        entries: [
          {name: 'etc/', type: 'directory'},
          {name: 'etc/keep', content: 'v1\n', xattrs: {'user.lost': Buffer.from('replaced by layer 2')}},
          {name: 'etc/noted', content: 'noted\n', xattrs: {'user.note': Buffer.from('hello')}},
          {name: 'etc/gone', content: 'bye\n'},
          {name: 'usr/', type: 'directory'},
          {name: 'usr/bin/', type: 'directory'},
          {name: 'usr/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755},
          {name: 'usr/bin/su', content: 'setuid\n', mode: 0o4755},
          {name: 'usr/bin/wall', content: 'setgid\n', mode: 0o2755, gid: 5},
          {name: 'srv/', type: 'directory'},
          {name: 'srv/shared/', type: 'directory', mode: 0o2775, uid: 1000, gid: 1000},
          {name: 'srv/shared/data', content: 'shared\n', uid: 1000, gid: 1000, mode: 0o664},
          {name: 'tmp/', type: 'directory', mode: 0o1777},
          {name: 'opq/', type: 'directory'},
          {name: 'opq/a', content: 'lower a\n'},
          {name: 'opq/sub/', type: 'directory'},
          {name: 'opq/sub/b', content: 'lower b\n'},
          {name: 'd2f/', type: 'directory'},
          {name: 'd2f/child', content: 'child\n'},
          {name: 'f2d', content: 'a file first\n'},
          {name: 'sym-rel', type: 'symlink', linkname: 'etc/keep'},
          {name: 'sym-abs', type: 'symlink', linkname: '/etc/keep'},
          {name: 'sym-dangling', type: 'symlink', linkname: '/nowhere/at/all'},
          {name: 'caps/', type: 'directory'},
          {name: 'caps/ping', content: 'ping\n', mode: 0o755, xattrs: {'security.capability': fileCapability(['cap_net_raw', 'cap_setuid', 'e'])}},
          {name: `${LONG_DIR}/`, type: 'directory'},
          {name: LONG_NAME, content: 'long\n'},
          {name: 'données/', type: 'directory'},
          {name: NON_ASCII, content: 'unicode\n'},
          {name: 'home/', type: 'directory'},
          {name: 'home/user/', type: 'directory', uid: 1000, gid: 1000, mode: 0o700, xattrs: {'user.dir': Buffer.from('on a directory')}},
          {name: 'home/user/secret', content: 'mine\n', uid: 1000, gid: 1000, mode: 0o600},
          {name: 'dev/', type: 'directory'},
          {name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
          {name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6},
          {name: 'run/', type: 'directory'},
          {name: 'run/pipe', type: 'fifo', mode: 0o600},
        ],
      },
      {
        compression: 'none',
        entries: [
          {name: 'etc/', type: 'directory'},
          {name: 'etc/.wh.gone'},
          {name: 'etc/keep', content: 'v2\n'},
          {name: 'opq/', type: 'directory'},
          {name: 'opq/.wh..wh..opq'},
          {name: 'opq/new', content: 'upper\n'},
          {name: 'usr/bin/tool-link', type: 'link', linkname: 'usr/bin/tool'},
          {name: 'd2f', content: 'now a file\n'},
          {name: 'f2d/', type: 'directory'},
          {name: 'f2d/inside', content: 'now a dir\n'},
          {name: 'sym-rel', content: 'symlink replaced by a file\n'},
        ],
      },
      {compression: 'gzip', entries: []},
      {
        compression: 'gzip',
        entries: [
          {name: 'bin2/', type: 'directory'},
          {name: 'bin2/a', content: 'same inode\n', mode: 0o755},
          {name: 'bin2/b', type: 'link', linkname: 'bin2/a'},
          {name: 'bin2/c', type: 'link', linkname: 'usr/bin/tool-link'},
          {name: '.wh.srv'},
          {name: 'usr/bin/.wh.su'},
        ],
      },
    ],
  }
}

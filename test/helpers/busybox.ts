/**
 * Runnable test images from the host's static busybox (Debian `busybox-static`),
 * so no image is ever downloaded.
 */
import {readFileSync} from 'node:fs'
import type {ImageSpec} from './oci-layout.js'
import type {TarEntry} from './tar.js'
import {BUSYBOX_PATH, requireTools} from './tools.js'

/** Applets linked to /bin/busybox in {@link busyboxLayer}. */
export const BUSYBOX_APPLETS = ['sh', 'ls', 'cat', 'id', 'echo', 'touch', 'pwd', 'env', 'stat', 'whoami', 'sleep', 'true'] as const

/** The unprivileged user of test images. */
export const TEST_USER = {name: 'user', uid: 1000, gid: 1000, home: '/home/user'} as const

/** Options for {@link busyboxLayer}. */
export interface BusyboxLayerOptions {
  /** Also add the files podman needs to start a read-only rootfs ({@link podmanMountPoints}). Default false. */
  podmanMountPoints?: boolean
}

let busyboxBytes: Buffer | undefined

function readBusybox(): Buffer {
  if (busyboxBytes === undefined) {
    requireTools('busybox')
    busyboxBytes = readFileSync(BUSYBOX_PATH)
  }
  return busyboxBytes
}

/**
 * The files podman 4.3 bind-mounts over (or, for `/etc/mtab`, creates) when it
 * starts a container. On a read-only rootfs that lacks them the start fails,
 * e.g. "creating /etc/mtab symlink: read-only file system".
 */
export function podmanMountPoints(): TarEntry[] {
  return [
    {name: 'etc/hosts', content: ''},
    {name: 'etc/resolv.conf', content: ''},
    {name: 'etc/hostname', content: ''},
    {name: 'etc/mtab', type: 'symlink', linkname: '/proc/mounts'},
    {name: 'run/', type: 'directory'},
    {name: 'run/.containerenv', content: ''},
  ]
}

/**
 * A runnable root filesystem as one layer: /bin/busybox (0755) with symlinks
 * for {@link BUSYBOX_APPLETS}, /etc/passwd and /etc/group with root and
 * {@link TEST_USER} (uid/gid 1000), and the usual empty directories. Like a
 * real busybox image it lacks podman's mount points unless asked for.
 */
export function busyboxLayer(opts: BusyboxLayerOptions = {}): TarEntry[] {
  const entries: TarEntry[] = [
    {name: 'bin/', type: 'directory'},
    {name: 'bin/busybox', content: readBusybox(), mode: 0o755},
    ...BUSYBOX_APPLETS.map((applet): TarEntry => ({name: `bin/${applet}`, type: 'symlink', linkname: 'busybox'})),
    {name: 'dev/', type: 'directory'},
    {name: 'proc/', type: 'directory'},
    {name: 'sys/', type: 'directory'},
    {name: 'tmp/', type: 'directory', mode: 0o1777},
    {name: 'root/', type: 'directory', mode: 0o700},
    {name: 'home/', type: 'directory'},
    {name: 'home/user/', type: 'directory', uid: TEST_USER.uid, gid: TEST_USER.gid},
    {name: 'etc/', type: 'directory'},
    {
      name: 'etc/passwd',
      content: `root:x:0:0:root:/root:/bin/sh\n${TEST_USER.name}:x:${TEST_USER.uid}:${TEST_USER.gid}:${TEST_USER.name}:${TEST_USER.home}:/bin/sh\n`,
    },
    {name: 'etc/group', content: `root:x:0:\n${TEST_USER.name}:x:${TEST_USER.gid}:\n`},
  ]
  return opts.podmanMountPoints ? [...entries, ...podmanMountPoints()] : entries
}

/**
 * An image whose first layer is {@link busyboxLayer}, followed by `extra`
 * layers (each an entry list, gzip), with `Cmd: ["/bin/sh"]` and a PATH.
 */
export function runnableImage(extra: TarEntry[][] = [], opts: BusyboxLayerOptions = {}): ImageSpec {
  return {
    layers: [{entries: busyboxLayer(opts)}, ...extra.map((entries) => ({entries}))],
    config: {Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh']},
  }
}

/**
 * The platform images of the multi-platform tests: each holds `/data/arch` naming its
 * platform, so a read through any path tells which root it landed in.
 */
import {runnableImage} from './busybox.js'
import type {ImageSpec} from './oci-layout.js'
import type {TarEntry} from './tar.js'

/** `/data/arch` holding `arch`. */
export function archData(arch: string): TarEntry[] {
  return [{name: 'data/', type: 'directory'}, {name: 'data/arch', content: `${arch}\n`}]
}

/** amd64: busybox, so it runs on these machines. */
export const AMD64_IMAGE: ImageSpec = {...runnableImage([archData('amd64')]), architecture: 'amd64'}

/** arm64/v8: files only (nothing here could run it), in two layers. */
export const ARM64_IMAGE: ImageSpec = {
  layers: [{entries: archData('arm64')}, {entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/os-release', content: 'ID=arm\n'}]}],
  architecture: 'arm64',
  variant: 'v8',
  config: {Cmd: ['/bin/sh']},
}

/** 386: files only; the platform a CVMFS client under `setarch i686` takes. */
export const I386_IMAGE: ImageSpec = {layers: [{entries: archData('386')}], architecture: '386', config: {Cmd: ['/bin/sh']}}

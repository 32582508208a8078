/**
 * An image laid out in a repository directory the way DUCC 2.12 lays it out, made by
 * code: the flat root with DUCC's additions only (the mount-point directories, empty
 * `/etc/hosts` and `/etc/resolv.conf`, no `/etc/mtab`, `/etc/hostname` or `/run`), its
 * catalog markers, the relative public link and DUCC's manifest.json. (What DUCC really
 * writes was seen with `cvmfs_ducc convert-single-image` of the kit: see
 * test/e2e/ducc-roots.test.ts, which runs it.)
 */
import {mkdir, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {writeRootfs} from './rootfs.js'
import type {TarEntry} from './tar.js'

/** The directories DUCC adds to every flat root (for apptainer). */
const DUCC_DIRS = ['dev', 'proc', 'sys', 'tmp', 'var', 'var/tmp', 'home', 'root', 'etc']

/**
 * Write `entries` as DUCC's flat root of `configDigest` under `repo`, linked as `name`
 * (`<registry>/<repository>:<tag>`).
 *
 * @returns the flat root's path.
 */
export async function writeDuccShapedImage(repo: string, name: string, configDigest: string, entries: TarEntry[]): Promise<string> {
  const hex = configDigest.replace(/^sha256:/, '')
  const flatRel = join('.flat', hex.slice(0, 2), hex)
  const flat = join(repo, flatRel)
  // DUCC replaces the image's /etc/hosts and /etc/resolv.conf with empty files.
  const replaced = new Set(['etc/hosts', 'etc/resolv.conf'])
  const kept = entries.filter((entry) => !replaced.has(entry.name.replace(/^\/+|\/+$/g, '')))
  const have = new Set(kept.map((entry) => entry.name.replace(/^\/+|\/+$/g, '')))
  const added: TarEntry[] = DUCC_DIRS.filter((dir) => !have.has(dir)).map((dir) => ({name: `${dir}/`, type: 'directory'}))
  await writeRootfs(flat, [...kept, ...added, {name: 'etc/hosts', content: ''}, {name: 'etc/resolv.conf', content: ''}, {name: '.cvmfscatalog', content: ''}])
  await writeFile(join(repo, '.flat', '.cvmfscatalog'), '')
  const link = join(repo, name)
  await mkdir(dirname(link), {recursive: true})
  await symlink('../'.repeat(name.split('/').length - 1) + flatRel, link)
  const metadata = join(repo, '.metadata', name)
  await mkdir(metadata, {recursive: true})
  await writeFile(join(metadata, 'manifest.json'), JSON.stringify({SchemaVersion: 2, MediaType: 'application/vnd.oci.image.manifest.v1+json', Config: {MediaType: 'application/vnd.oci.image.config.v1+json', Size: 0, Digest: configDigest}, Layers: []}))
  return flat
}

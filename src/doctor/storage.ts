/**
 * storage.conf and the repositories' podman image stores: a repository that carries a store
 * (`<root>/podmanStore`, which publish keeps in step: src/podman-store/) should be listed in
 * `additionalimagestores` so that `podman run IMAGE` finds its images by name; a listed
 * store that is not there makes podman fail every command (seen with podman 4.3.1:
 * "overlay: can't stat imageStore dir …").
 */
import {join, resolve} from 'node:path'

import {stat} from '../fs-promises.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {additionalImageStores, parseToml, readStorageConf, type Caller} from './containers-config.js'
import type {Finding} from './report.js'

const isDir = (path: string) => stat(path).then((s) => s.isDirectory(), () => false)

export async function checkStorage(roots: string[], caller: Caller): Promise<Finding[]> {
  const file = await readStorageConf(caller)
  const where = file?.path ?? '/etc/containers/storage.conf'
  let listed: string[] = []
  if (file) {
    const parsed = parseToml(file)
    if ('error' in parsed) return [{check: 'storage', status: 'problem', message: `${file.path} is not valid TOML (${parsed.error}): podman fails every command`, fix: `fix ${file.path}`}]
    listed = additionalImageStores(parsed.value)
  }
  const findings: Finding[] = []
  for (const store of listed) {
    if (!(await isDir(store))) {
      findings.push({check: 'storage', status: 'problem', message: `${where} lists the additional image store ${store}, which is not there: podman fails every command`, fix: `mount the repository, or remove ${store} from additionalimagestores in ${where}`})
    }
  }
  const listedSet = new Set(listed.map((store) => resolve(store)))
  for (const root of roots) {
    const store = join(root, PODMAN_STORE_DIR)
    if (!(await isDir(store))) continue
    findings.push(
      listedSet.has(resolve(store))
        ? {check: 'storage', status: 'ok', message: `${where} lists ${store}: podman run finds its images by name`}
        : {
            check: 'storage',
            status: 'warning',
            message: `${store} is not in additionalimagestores of ${where}: podman run IMAGE does not find its images by name (--rootfs still works)`,
            fix: `cvmfs-oci podman configure --root ${root} --storage-conf ${where}`,
          },
    )
  }
  if (findings.length === 0) {
    findings.push({check: 'storage', status: 'ok', message: listed.length ? `${where}: its ${listed.length} additional image store(s) are there` : `no repository here carries a podman image store (${PODMAN_STORE_DIR}/): nothing for ${where} to list`})
  }
  return findings
}

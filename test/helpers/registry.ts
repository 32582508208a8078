/**
 * Pushing test layouts to the one real registry started by global-setup.ts.
 */
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {inject} from 'vitest'
import {exec} from './exec.js'
import {ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX, writeOciLayout, type ImageSpec} from './oci-layout.js'
import {requireTools} from './tools.js'

/** `127.0.0.1:PORT` of the registry global-setup.ts started (plain HTTP). */
export function registryAddress(): string {
  const address = inject('registry')
  if (!address) throw new Error('no registry address: is test/helpers/global-setup.ts configured as globalSetup in vitest.config.ts?')
  return address
}

/** Media type of the entry tagged `tag` in a layout's index.json. */
async function taggedMediaType(layoutDir: string, tag: string): Promise<string | undefined> {
  const index = JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8')) as {manifests: {mediaType?: string; annotations?: Record<string, string>}[]}
  const entry = index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === tag)
  if (!entry) throw new Error(`pushLayout: no tag ${tag} in ${layoutDir}/index.json`)
  return entry.mediaType
}

/**
 * Copy `oci:layoutDir:tag` to `docker://registry/repoAndTag` with the real
 * skopeo over plain HTTP (`--dest-tls-verify=false`); image indexes are copied
 * whole (`--all`).
 *
 * @param registry - usually {@link registryAddress}()
 * @param repoAndTag - e.g. `test/busybox:1`
 * @returns the full reference pushed to, e.g. `127.0.0.1:5000/test/busybox:1`.
 */
export async function pushLayout(layoutDir: string, tag: string, registry: string, repoAndTag: string): Promise<string> {
  requireTools('skopeo')
  const isIndex = (await taggedMediaType(layoutDir, tag)) === MEDIA_TYPE_INDEX
  const dest = `${registry}/${repoAndTag}`
  await exec('skopeo', [
    '--insecure-policy', // the machine's policy.json is none of the tests' business
    'copy',
    '--quiet',
    ...(isIndex ? ['--all'] : []),
    '--dest-tls-verify=false',
    `oci:${layoutDir}:${tag}`,
    `docker://${dest}`,
  ])
  return dest
}

/**
 * Write `image` as an OCI layout in a new directory below `workDir` and push it to the
 * test registry as `repoTag` (e.g. `sync-x/tool:1.0`).
 *
 * @returns the full reference pushed to.
 */
export async function pushImage(workDir: string, image: ImageSpec, repoTag: string): Promise<string> {
  const layout = path.join(workDir, `layout-${repoTag.replace(/[/:]/g, '_')}`)
  await writeOciLayout(layout, [{tag: 't', image}])
  return pushLayout(layout, 't', registryAddress(), repoTag)
}

/**
 * The config asked for beside the manifest (src/publish/publish-image.ts): only where a
 * directory repository would ask for it alone, for a registry image, one platform, and
 * a name not published yet; and used only when its digest is the manifest's.
 */
import {mkdir, symlink} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {parseSource} from '../../src/fetch/source.js'
import {sha256Digest} from '../../src/oci/digest.js'
import type {ImageManifest} from '../../src/oci/documents.js'
import {configAlongside, configOf, type Inspection} from '../../src/publish/publish-image.js'
import {useTempDir} from '../helpers/temp-dir.js'

const manifestOf = (config: Buffer): ImageManifest =>
  ({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length},
    layers: [],
  }) as ImageManifest

const inspection = (config: Buffer | undefined): Inspection => ({
  source: parseSource('registry.example.org/sci/app:1'),
  top: new Promise(() => {}),
  config: Promise.resolve(config),
  stop: new AbortController(),
  started: Date.now(),
})

describe('configOf', () => {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')

  it("uses the config asked for beside the manifest when it is the manifest's", async () => {
    expect(await configOf(inspection(config), manifestOf(config))).toBe(config)
  })

  it('asks again when it is another one (the tag moved, or skopeo chose another platform)', async () => {
    const other = Buffer.from(`${config.toString().slice(0, -1)} }`)
    expect(await configOf(inspection(other), manifestOf(config))).toBeUndefined()
  })

  it('asks again when that request failed or was not made', async () => {
    expect(await configOf(inspection(undefined), manifestOf(config))).toBeUndefined()
    expect(await configOf({...inspection(config), config: undefined}, manifestOf(config))).toBeUndefined()
    expect(await configOf(undefined, manifestOf(config))).toBeUndefined()
  })
})

describe('configAlongside', () => {
  const dir = useTempDir('cvmfs-oci-alongside-')
  const source = parseSource('registry.example.org/sci/app:1')

  it('asks beside the manifest for a registry image not published yet, into a directory', async () => {
    expect(await configAlongside(dir(), source, {directory: true})).toBe(true)
  })

  it('asks only after the manifest for a name that is published (it may be unchanged)', async () => {
    const link = join(dir(), source.name)
    await mkdir(dirname(link), {recursive: true})
    // A link whose target is gone still names a published image.
    await symlink('../../.flat/00/gone', link)
    expect(await configAlongside(dir(), source, {directory: true})).toBe(false)
  })

  it('does not ask beside the manifest into CVMFS, in a dry run, for several platforms, or from a local layout', async () => {
    expect(await configAlongside(dir(), source, {directory: false})).toBe(false)
    expect(await configAlongside(dir(), source, {directory: true, dryRun: true})).toBe(false)
    expect(await configAlongside(dir(), source, {directory: true, platforms: {all: true}})).toBe(false)
    expect(await configAlongside(dir(), parseSource('oci:/tmp/layout:1', 'registry.example.org/sci/app:1'), {directory: true})).toBe(false)
  })
})

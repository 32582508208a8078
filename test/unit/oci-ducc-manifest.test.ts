import {describe, expect, it} from 'vitest'

import type {ImageManifest} from '../../src/oci/documents.js'
import {readManifestAnyCase, toDuccManifest} from '../../src/oci/ducc-manifest.js'

const CONFIG = 'sha256:7e01a0d0a1dcd9e539f8e9bbd80106d59efbdf97293b3d38f5d7a34501526cdb'
const L1 = 'sha256:c6a83fedfae6ed8a4f5f7cbb6a7b6f1c1ec3d86fea8cb9e5ba2e5e6e2a7f6e3a'
const L2 = 'sha256:0b7a5b2e6a0b0d9e8d3f1c4a5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b'

const docker: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {mediaType: 'application/vnd.docker.container.image.v1+json', size: 1472, digest: CONFIG},
  layers: [
    {mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 3397879, digest: L1, urls: ['https://x']},
    {mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', size: 12, digest: L2},
  ],
  annotations: {'not.in': 'ducc'},
}

describe('toDuccManifest', () => {
  it("writes Go's default JSON of DUCC's struct: capitalised keys in struct order, compact", () => {
    expect(toDuccManifest(docker)).toBe(
      '{"SchemaVersion":2,"MediaType":"application/vnd.docker.distribution.manifest.v2+json",' +
        `"Config":{"MediaType":"application/vnd.docker.container.image.v1+json","Size":1472,"Digest":"${CONFIG}"},` +
        `"Layers":[{"MediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","Size":3397879,"Digest":"${L1}"},` +
        `{"MediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","Size":12,"Digest":"${L2}"}]}`,
    )
  })

  it('writes the Go zero value for an OCI manifest without mediaType, and [] for no layers', () => {
    const oci: ImageManifest = {
      schemaVersion: 2,
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', size: 2, digest: CONFIG},
      layers: [],
    }
    expect(toDuccManifest(oci)).toBe(
      `{"SchemaVersion":2,"MediaType":"","Config":{"MediaType":"application/vnd.oci.image.config.v1+json","Size":2,"Digest":"${CONFIG}"},"Layers":[]}`,
    )
  })

  it('escapes <, > and & as Go does', () => {
    const odd = {...docker, mediaType: 'a/b<c>&d', layers: []}
    expect(toDuccManifest(odd)).toContain('"MediaType":"a/b\\u003cc\\u003e\\u0026d"')
  })
})

describe('readManifestAnyCase', () => {
  const expected = {
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: {digest: CONFIG, size: 1472, mediaType: 'application/vnd.docker.container.image.v1+json'},
    layers: [
      {digest: L1, size: 3397879, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip'},
      {digest: L2, size: 12, mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'},
    ],
  }

  it("reads DUCC's capitalised form (round trip)", () => {
    expect(readManifestAnyCase(JSON.parse(toDuccManifest(docker)))).toStrictEqual(expected)
  })

  it('reads the registry form with lower-case keys', () => {
    expect(readManifestAnyCase(JSON.parse(JSON.stringify(docker)))).toStrictEqual(expected)
  })

  it('reads a mixture, and keys in any case', () => {
    const doc = {SCHEMAVERSION: 2, mediatype: docker.mediaType, Config: {DIGEST: CONFIG, size: 1472}, layers: [{Digest: L1, Size: 5}]}
    expect(readManifestAnyCase(doc)).toStrictEqual({
      mediaType: docker.mediaType,
      config: {digest: CONFIG, size: 1472},
      layers: [{digest: L1, size: 5}],
    })
  })

  it('treats "MediaType":"" and "Layers":null (Go zero values) as absent', () => {
    expect(readManifestAnyCase({SchemaVersion: 2, MediaType: '', Config: {MediaType: '', Size: 2, Digest: CONFIG}, Layers: null})).toStrictEqual({
      config: {digest: CONFIG, size: 2},
      layers: [],
    })
  })

  it.each<[string, unknown]>([
    ['null', null],
    ['an array', []],
    ['a string', 'manifest'],
    ['no config', {Layers: []}],
    ['a config without digest', {Config: {Size: 1}, Layers: []}],
    ['a config with a bad digest', {Config: {Size: 1, Digest: 'nope'}, Layers: []}],
    ['a negative size', {Config: {Size: -1, Digest: CONFIG}, Layers: []}],
    ['a size as a string', {Config: {Size: '1', Digest: CONFIG}, Layers: []}],
    ['layers that are not a list', {Config: {Size: 1, Digest: CONFIG}, Layers: {}}],
    ['a broken layer', {Config: {Size: 1, Digest: CONFIG}, Layers: [{Size: 1}]}],
  ])('returns undefined for %s', (_name, doc) => {
    expect(readManifestAnyCase(doc)).toBeUndefined()
  })
})

import {describe, expect, it} from 'vitest'

import {
  DOCKER_FOREIGN_LAYER_GZIP,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1_SIGNED_MANIFEST,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_LAYER_NONDISTRIBUTABLE_GZIP,
  OCI_LAYER_TAR,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
  isForeignLayer,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
  layerCompression,
} from '../../src/oci/media-types.js'

describe('media types', () => {
  it.each([
    [OCI_MANIFEST, 'manifest'],
    [DOCKER_MANIFEST, 'manifest'],
    [OCI_INDEX, 'index'],
    [DOCKER_MANIFEST_LIST, 'index'],
    [DOCKER_SCHEMA1_SIGNED_MANIFEST, 'schema1'],
    ['application/json', 'other'],
    [undefined, 'other'],
  ])('%s is a %s', (mediaType, kind) => {
    expect(isManifestMediaType(mediaType)).toBe(kind === 'manifest')
    expect(isIndexMediaType(mediaType)).toBe(kind === 'index')
    expect(isSchema1MediaType(mediaType)).toBe(kind === 'schema1')
  })

  it.each([
    [DOCKER_FOREIGN_LAYER_GZIP, true],
    [OCI_LAYER_NONDISTRIBUTABLE_GZIP, true],
    [DOCKER_LAYER_GZIP, false],
    [OCI_LAYER_GZIP, false],
  ])('isForeignLayer(%s) = %s', (mediaType, foreign) => {
    expect(isForeignLayer(mediaType)).toBe(foreign)
  })

  it.each([
    [OCI_LAYER_TAR, 'none'],
    [OCI_LAYER_GZIP, 'gzip'],
    [DOCKER_LAYER_GZIP, 'gzip'],
    [OCI_LAYER_ZSTD, 'zstd'],
    ['application/vnd.oci.image.config.v1+json', undefined],
  ])('layerCompression(%s) = %s', (mediaType, compression) => {
    expect(layerCompression(mediaType)).toBe(compression)
  })
})

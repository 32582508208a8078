import {describe, expect, it} from 'vitest'

import {VerificationError} from '../../src/errors.js'
import {parseConfig, parseManifestOrIndex} from '../../src/oci/documents.js'

// Digests as registries write them; the content behind them does not matter here.
const D = {
  config: 'sha256:7e01a0d0a1dcd9e539f8e9bbd80106d59efbdf97293b3d38f5d7a34501526cdb',
  layer1: 'sha256:c6a83fedfae6ed8a4f5f7cbb6a7b6f1c1ec3d86fea8cb9e5ba2e5e6e2a7f6e3a',
  layer2: 'sha256:0b7a5b2e6a0b0d9e8d3f1c4a5e6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b',
  amd64: 'sha256:25fad2a32ad1f6f510e528448ae1ec69a28ef81916a004d3629874104f8a7f70',
  armv6: 'sha256:e047bc2af17934d38c5a7fa9f46d443f1de3a7675546402592ef805cfa929f9d',
  armv7: 'sha256:8483ecd016885d8dba70426fda133c30466f661bb041490d525658f1aac73822',
  arm64: 'sha256:c74f1b1166784193ea6c8f9440263b9be6cae07dfe35e32a5df7a31358ac2060',
  attest: 'sha256:2b7b4a8c5e0a6e1f3f8b2c9d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f',
}

/** A Docker v2 schema 2 manifest as Docker Hub serves it for an older single-arch image. */
const dockerManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: {mediaType: 'application/vnd.docker.container.image.v1+json', size: 1472, digest: D.config},
  layers: [
    {mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 3397879, digest: D.layer1},
    {mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 123, digest: D.layer2},
  ],
}

/** An OCI manifest from buildkit: no mediaType is needed, annotations on layers and manifest. */
const ociManifest = {
  schemaVersion: 2,
  config: {mediaType: 'application/vnd.oci.image.config.v1+json', size: 2051, digest: D.config},
  layers: [
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      size: 29534055,
      digest: D.layer1,
      annotations: {'io.containerd.image.name': 'x'},
    },
    {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
      size: 812,
      digest: D.layer2,
      urls: ['https://mirror.example/blob'],
    },
  ],
  annotations: {
    'org.opencontainers.image.created': '2024-05-01T10:00:00Z',
    'org.opencontainers.image.base.name': 'docker.io/library/debian:bookworm',
  },
  // image-spec 1.1 fields and an unknown extension must pass.
  subject: {mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 7682, digest: D.amd64},
  'com.example.extension': {anything: true},
}

/** A Docker manifest list with arm variants and a buildx attestation entry. */
const dockerList = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
  manifests: [
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      size: 528,
      digest: D.amd64,
      platform: {architecture: 'amd64', os: 'linux'},
    },
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      size: 528,
      digest: D.armv6,
      platform: {architecture: 'arm', os: 'linux', variant: 'v6'},
    },
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      size: 528,
      digest: D.armv7,
      platform: {architecture: 'arm', os: 'linux', variant: 'v7'},
    },
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      size: 528,
      digest: D.arm64,
      platform: {architecture: 'arm64', os: 'linux', variant: 'v8'},
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 566,
      digest: D.attest,
      annotations: {'vnd.docker.reference.digest': D.amd64, 'vnd.docker.reference.type': 'attestation-manifest'},
      platform: {architecture: 'unknown', os: 'unknown'},
    },
  ],
}

/** An OCI index, Windows entries included (os.version, os.features). */
const ociIndex = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 1234,
      digest: D.amd64,
      platform: {architecture: 'amd64', os: 'linux'},
      annotations: {'org.opencontainers.image.ref.name': 'latest'},
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 1400,
      digest: D.arm64,
      platform: {architecture: 'amd64', os: 'windows', 'os.version': '10.0.20348.2340', 'os.features': ['win32k']},
    },
  ],
  annotations: {'org.opencontainers.image.created': '2024-05-01T10:00:00Z'},
}

/** `docker build` (legacy builder) config: null Cmd/Entrypoint/Volumes, container_config, … */
const dockerConfig = {
  architecture: 'amd64',
  config: {
    Hostname: '',
    Domainname: '',
    User: '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: null,
    Image: 'sha256:0c1a6e7a2f1e4a5c7d9b3e8f6a2c4d1e5f7a9b0c3d6e8f1a2b4c5d7e9f0a1b3c',
    Volumes: null,
    WorkingDir: '',
    Entrypoint: null,
    OnBuild: null,
    Labels: null,
  },
  container: 'b7f8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8',
  container_config: {
    Hostname: 'b7f8c9d0e1f2',
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['/bin/sh', '-c', '#(nop) ', 'CMD ["/bin/sh"]'],
    Image: 'sha256:0c1a6e7a2f1e4a5c7d9b3e8f6a2c4d1e5f7a9b0c3d6e8f1a2b4c5d7e9f0a1b3c',
    Volumes: null,
    Labels: {},
  },
  created: '2023-08-07T19:20:20.894140623Z',
  docker_version: '20.10.23',
  history: [
    {created: '2023-08-07T19:20:20.71894984Z', created_by: '/bin/sh -c #(nop) ADD file:32ff5e7a78b890996ee4681cc0a26185d3e9acdb4eb1e2aaccb2411f922fed6b in / '},
    {created: '2023-08-07T19:20:20.894140623Z', created_by: '/bin/sh -c #(nop)  CMD ["/bin/sh"]', empty_layer: true},
  ],
  os: 'linux',
  rootfs: {type: 'layers', diff_ids: [D.layer1]},
}

/** A buildkit OCI config with every OCI `config` field set. */
const ociConfig = {
  created: '2024-05-01T10:00:00Z',
  author: 'someone@example.org',
  architecture: 'arm64',
  variant: 'v8',
  os: 'linux',
  config: {
    User: '1000:1000',
    ExposedPorts: {'8080/tcp': {}},
    Env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
    Entrypoint: ['/usr/bin/tini', '--'],
    Cmd: ['python3', '-m', 'http.server'],
    Volumes: {'/data': {}},
    WorkingDir: '/srv',
    Labels: {'org.opencontainers.image.source': 'https://example.org/repo'},
    StopSignal: 'SIGTERM',
    ArgsEscaped: true,
  },
  rootfs: {type: 'layers', diff_ids: [D.layer1, D.layer2]},
  history: [{created: '2024-05-01T10:00:00Z', created_by: 'RUN /bin/sh -c pip install x # buildkit', comment: 'buildkit.dockerfile.v0'}],
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))
const clone = <T>(value: T): T => structuredClone(value)

function failure(fn: () => unknown): VerificationError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError)
    return error as VerificationError
  }
  throw new Error('expected a VerificationError')
}

describe('parseManifestOrIndex accepts real documents', () => {
  it('a Docker v2 schema 2 manifest', () => {
    const result = parseManifestOrIndex(json(dockerManifest), 'manifest of docker://x/y:1')
    expect(result.kind).toBe('manifest')
    if (result.kind === 'manifest') expect(result.manifest.layers.map((l) => l.size)).toEqual([3397879, 123])
  })

  it('an OCI manifest without mediaType, with 1.1 fields and an unknown extension', () => {
    const result = parseManifestOrIndex(json(ociManifest), 'manifest of oci')
    expect(result.kind).toBe('manifest')
  })

  it('an OCI manifest with an empty layer list (image-spec 1.1 only says SHOULD)', () => {
    expect(parseManifestOrIndex(json({...ociManifest, layers: []}), 'm').kind).toBe('manifest')
  })

  it('a Docker manifest list with arm variants and an attestation entry', () => {
    const result = parseManifestOrIndex(json(dockerList), 'docker://x/y:1')
    expect(result.kind).toBe('index')
    if (result.kind === 'index') expect(result.index.manifests).toHaveLength(5)
  })

  it('an OCI index with Windows platform fields', () => {
    expect(parseManifestOrIndex(json(ociIndex), 'i').kind).toBe('index')
  })

  it('an OCI index without mediaType, recognised by its manifests', () => {
    const {mediaType: _, ...index} = ociIndex
    expect(parseManifestOrIndex(json(index), 'i').kind).toBe('index')
  })

  it('pretty-printed bytes as registries store them', () => {
    expect(parseManifestOrIndex(Buffer.from(JSON.stringify(dockerManifest, null, 3)), 'm').kind).toBe('manifest')
  })
})

describe('parseManifestOrIndex rejects broken documents', () => {
  it.each<[string, (m: Record<string, unknown>) => unknown, RegExp[]]>([
    ['missing config', ({config: _, ...m}) => m, [/^ {2}\/config: is required but missing$/m]],
    ['missing layers', ({layers: _, ...m}) => m, [/\/layers: is required but missing/]],
    [
      'a bad layer digest',
      (m) => ({...m, layers: [{...(m['layers'] as object[])[0], digest: 'sha256:not a digest'}]}),
      [/\/layers\/0\/digest: must be a digest such as "sha256:<64 hex digits>" \(got "sha256:not a digest"\)$/m],
    ],
    ['schemaVersion 3', (m) => ({...m, schemaVersion: 3}), [/\/schemaVersion: must be 2 \(got 3\)/]],
    ['schemaVersion as a string', (m) => ({...m, schemaVersion: '2'}), [/\/schemaVersion: must be integer \(got "2"\)/]],
    ['a negative size', (m) => ({...m, config: {...(m['config'] as object), size: -1}}), [/\/config\/size: must be >= 0 \(got -1\)/]],
    ['a fractional size', (m) => ({...m, config: {...(m['config'] as object), size: 1.5}}), [/\/config\/size: must be integer/]],
    [
      'an unknown manifest mediaType',
      (m) => ({...m, mediaType: 'application/vnd.oci.artifact.manifest.v1+json'}),
      [/\/mediaType: must be one of "application\/vnd\.oci\.image\.manifest\.v1\+json", "application\/vnd\.docker\.distribution\.manifest\.v2\+json"/],
    ],
    ['a layer without mediaType', (m) => ({...m, layers: [{size: 1, digest: D.layer1}]}), [/\/layers\/0\/mediaType: is required but missing/]],
    ['annotations that are not strings', (m) => ({...m, annotations: {a: 1}}), [/\/annotations\/a: must be string \(got 1\)/]],
    ['an array at the top', () => [], [/^ {2}\/: must be object \(got an array\)$/m]],
  ])('%s', (_name, breakIt, messages) => {
    const broken = breakIt(clone(dockerManifest) as Record<string, unknown>)
    const error = failure(() => parseManifestOrIndex(json(broken), 'manifest of docker://x/y:1'))
    expect(error.code).toBe('E_SCHEMA')
    expect(error.exitCode).toBe(4)
    expect(error.message).toMatch(/^manifest of docker:\/\/x\/y:1 is not a valid image manifest \(OCI or Docker schema 2\):\n/)
    for (const m of messages) expect(error.message).toMatch(m)
    expect(error.hint).toMatch(/rebuild/)
  })

  it('an index with an entry without digest, and a platform without os', () => {
    const broken = clone(dockerList)
    delete (broken.manifests[0] as Partial<(typeof broken.manifests)[0]>).digest
    delete (broken.manifests[1]!.platform as Partial<(typeof broken.manifests)[1]['platform']>).os
    const error = failure(() => parseManifestOrIndex(json(broken), 'docker://x/y:1'))
    expect(error.code).toBe('E_SCHEMA')
    expect(error.message).toContain('docker://x/y:1 is not a valid image index (OCI index or Docker manifest list):')
    expect(error.message).toContain('/manifests/0/digest: is required but missing')
    expect(error.message).toContain('/manifests/1/platform/os: is required but missing')
  })

  it('an index whose mediaType says index but that holds layers is checked as an index', () => {
    const error = failure(() => parseManifestOrIndex(json({...dockerManifest, mediaType: dockerList.mediaType}), 'i'))
    expect(error.message).toContain('/manifests: is required but missing')
  })

  it.each([
    [
      'unsigned',
      {
        schemaVersion: 1,
        name: 'library/busybox',
        tag: 'latest',
        architecture: 'amd64',
        fsLayers: [{blobSum: D.layer1}],
        history: [{v1Compatibility: '{"id":"abc"}'}],
      },
    ],
    [
      'signed (by mediaType)',
      {
        mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
        name: 'library/busybox',
        fsLayers: [{blobSum: D.layer1}],
        signatures: [{header: {alg: 'ES256'}, signature: 'xyz', protected: 'abc'}],
      },
    ],
  ])('a Docker schema 1 manifest, %s', (_name, doc) => {
    const error = failure(() => parseManifestOrIndex(json(doc), 'manifest of docker://old/img:1'))
    expect(error.code).toBe('E_SCHEMA1')
    expect(error.message).toBe('manifest of docker://old/img:1 is a Docker schema 1 manifest, which cvmfs-oci does not support')
    expect(error.hint).toMatch(/Re-push the image with a current docker, podman or skopeo/)
  })

  it('bytes that are not JSON', () => {
    const error = failure(() => parseManifestOrIndex(Buffer.from('<html>404</html>'), 'manifest of docker://x/y:1'))
    expect(error.code).toBe('E_BAD_JSON')
    expect(error.message).toMatch(/^manifest of docker:\/\/x\/y:1 is not valid JSON: /)
    expect(error.cause).toBeInstanceOf(SyntaxError)
  })

  it('lists at most 10 problems', () => {
    const layers = Array.from({length: 15}, () => ({mediaType: 'x/y', size: 1, digest: 'bad'}))
    const error = failure(() => parseManifestOrIndex(json({...dockerManifest, layers}), 'm'))
    const lines = error.message.split('\n').slice(1)
    expect(lines).toHaveLength(11)
    expect(lines[10]).toBe('  … and 5 more')
  })
})

describe('parseConfig', () => {
  it('accepts a Docker config with null Cmd and many extra fields', () => {
    const config = parseConfig(json(dockerConfig), 'config of docker://x/y:1')
    expect(config.config?.Cmd).toBeNull()
    expect(config['docker_version']).toBe('20.10.23')
  })

  it('accepts a full OCI config', () => {
    expect(parseConfig(json(ociConfig), 'c').config?.ExposedPorts).toEqual({'8080/tcp': {}})
  })

  it('accepts a config without config, history or created', () => {
    expect(parseConfig(json({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}}), 'c').os).toBe('linux')
  })

  it.each<[string, (c: Record<string, unknown>) => unknown, string[]]>([
    ['missing rootfs', ({rootfs: _, ...c}) => c, ['/rootfs: is required but missing']],
    ['missing architecture and os', ({architecture: _, os: __, ...c}) => c, ['/architecture: is required but missing', '/os: is required but missing']],
    ['a rootfs type other than layers', (c) => ({...c, rootfs: {type: 'layer', diff_ids: []}}), ['/rootfs/type: must be "layers" (got "layer")']],
    ['a bad diff_id', (c) => ({...c, rootfs: {type: 'layers', diff_ids: ['sha256:']}}), ['/rootfs/diff_ids/0: must be a digest such as "sha256:<64 hex digits>" (got "sha256:")']],
    [
      'Cmd as a shell string',
      (c) => ({...c, config: {...(c['config'] as object), Cmd: 'sh -c true'}}),
      ['/config/Cmd: must be array or null (got "sh -c true")'],
    ],
    ['Env entries that are not strings', (c) => ({...c, config: {...(c['config'] as object), Env: [1]}}), ['/config/Env/0: must be string (got 1)']],
    ['Labels with a number', (c) => ({...c, config: {...(c['config'] as object), Labels: {a: 1}}}), ['/config/Labels/a: must be string (got 1)']],
    ['history that is not an array', (c) => ({...c, history: {}}), ['/history: must be array (got an object)']],
  ])('rejects %s', (_name, breakIt, messages) => {
    const error = failure(() => parseConfig(json(breakIt(clone(dockerConfig))), 'config of docker://x/y:1'))
    expect(error.code).toBe('E_SCHEMA')
    expect(error.message).toMatch(/^config of docker:\/\/x\/y:1 is not a valid image config:\n/)
    expect(error.message.split('\n').slice(1)).toEqual(messages.map((m) => `  ${m}`))
  })

  it('rejects bytes that are not JSON', () => {
    expect(failure(() => parseConfig(Buffer.from('{"architecture":'), 'c')).code).toBe('E_BAD_JSON')
  })
})

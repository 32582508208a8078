import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/errors.js'
import {
  formatReference,
  type ImageReference,
  layoutName,
  layoutRegistries,
  parseLayoutName,
  parseReference,
} from '../../src/reference/reference.js'

const HEX = 'a'.repeat(64)
const HEX2 = '0123456789abcdef'.repeat(4)
const D = `sha256:${HEX}`

describe('parseReference / formatReference', () => {
  const cases: [input: string, expected: ImageReference, formatted: string][] = [
    ['ubuntu', {registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest'}, 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', {registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04'}, 'docker.io/library/ubuntu:22.04'],
    ['user/img', {registry: 'docker.io', repository: 'user/img', tag: 'latest'}, 'docker.io/user/img:latest'],
    ['user/img:v1.2-rc_3', {registry: 'docker.io', repository: 'user/img', tag: 'v1.2-rc_3'}, 'docker.io/user/img:v1.2-rc_3'],
    ['docker.io/library/ubuntu:22.04', {registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04'}, 'docker.io/library/ubuntu:22.04'],
    ['docker.io/ubuntu', {registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest'}, 'docker.io/library/ubuntu:latest'],
    ['index.docker.io/library/ubuntu:22.04', {registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04'}, 'docker.io/library/ubuntu:22.04'],
    ['index.docker.io/ubuntu', {registry: 'docker.io', repository: 'library/ubuntu', tag: 'latest'}, 'docker.io/library/ubuntu:latest'],
    ['registry.hub.docker.com/library/centos:centos7', {registry: 'docker.io', repository: 'library/centos', tag: 'centos7'}, 'docker.io/library/centos:centos7'],
    ['registry.hub.docker.com/atlas/analysisbase:21.2.1', {registry: 'docker.io', repository: 'atlas/analysisbase', tag: '21.2.1'}, 'docker.io/atlas/analysisbase:21.2.1'],
    ['docker://ubuntu:22.04', {registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04'}, 'docker.io/library/ubuntu:22.04'],
    ['docker://quay.io/centos/centos:stream9', {registry: 'quay.io', repository: 'centos/centos', tag: 'stream9'}, 'quay.io/centos/centos:stream9'],
    ['127.0.0.1:5000/foo/bar:1', {registry: '127.0.0.1:5000', repository: 'foo/bar', tag: '1'}, '127.0.0.1:5000/foo/bar:1'],
    ['localhost/x', {registry: 'localhost', repository: 'x', tag: 'latest'}, 'localhost/x:latest'],
    ['localhost:5000/x', {registry: 'localhost:5000', repository: 'x', tag: 'latest'}, 'localhost:5000/x:latest'],
    ['gitlab-registry.cern.ch/a/b/c-d__e.f:tag', {registry: 'gitlab-registry.cern.ch', repository: 'a/b/c-d__e.f', tag: 'tag'}, 'gitlab-registry.cern.ch/a/b/c-d__e.f:tag'],
    ['Registry.Example.COM/x', {registry: 'Registry.Example.COM', repository: 'x', tag: 'latest'}, 'Registry.Example.COM/x:latest'],
    ['[::1]:5000/foo', {registry: '[::1]:5000', repository: 'foo', tag: 'latest'}, '[::1]:5000/foo:latest'],
    ['localhost:5000', {registry: 'docker.io', repository: 'library/localhost', tag: '5000'}, 'docker.io/library/localhost:5000'],
    [`ubuntu@${D}`, {registry: 'docker.io', repository: 'library/ubuntu', digest: D}, `docker.io/library/ubuntu@${D}`],
    [`quay.io/a/b@${D}`, {registry: 'quay.io', repository: 'a/b', digest: D}, `quay.io/a/b@${D}`],
    [`ubuntu:22.04@${D}`, {registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04', digest: D}, `docker.io/library/ubuntu:22.04@${D}`],
    [`127.0.0.1:5000/foo:1@${D}`, {registry: '127.0.0.1:5000', repository: 'foo', tag: '1', digest: D}, `127.0.0.1:5000/foo:1@${D}`],
    [`a:${'t'.repeat(128)}`, {registry: 'docker.io', repository: 'library/a', tag: 't'.repeat(128)}, `docker.io/library/a:${'t'.repeat(128)}`],
    // Only a bare 64-hex string is an image ID; with a registry or a tag it is a name (as in Docker's grammar and podman).
    [`docker.io/library/${HEX2}`, {registry: 'docker.io', repository: `library/${HEX2}`, tag: 'latest'}, `docker.io/library/${HEX2}:latest`],
    [`${HEX2}:1`, {registry: 'docker.io', repository: `library/${HEX2}`, tag: '1'}, `docker.io/library/${HEX2}:1`],
    // A short hex string is a valid name (podman tries it as a name before it tries it as an ID prefix).
    ['2f1d018c7e34', {registry: 'docker.io', repository: 'library/2f1d018c7e34', tag: 'latest'}, 'docker.io/library/2f1d018c7e34:latest'],
  ]
  it.each(cases)('%s', (input, expected, formatted) => {
    const ref = parseReference(input)
    expect(ref).toEqual(expected)
    expect(formatReference(ref)).toBe(formatted)
    // The podman form parses back to itself.
    expect(parseReference(formatted)).toEqual(expected)
  })

  const invalid: [input: string, reason: RegExp][] = [
    ['', /empty/],
    ['Ubuntu', /must be lowercase/],
    ['user/Img:1', /must be lowercase/],
    ['ubuntu:', /tag after ":" is empty/],
    ['ubuntu:-bad', /tag "-bad" is invalid/],
    ['ubuntu:.bad', /tag ".bad" is invalid/],
    [`ubuntu:${'t'.repeat(129)}`, /is invalid/],
    ['ubuntu:a+b', /is invalid/],
    [':tag', /repository name is missing/],
    ['docker://', /repository name is missing/],
    [`@${D}`, /repository name is missing/],
    ['a//b', /empty path component/],
    ['a/', /empty path component/],
    ['quay.io/', /repository name is missing/],
    ['a..b', /may hold only/],
    ['a-/b', /may hold only/],
    ['_a', /may hold only/],
    ['a___b', /may hold only/],
    ['ubuntu latest', /white space/],
    ['ubuntu@', /digest after "@" is empty/],
    ['ubuntu@sha256:abc', /64 lowercase hex/],
    [`ubuntu@sha256:${'A'.repeat(64)}`, /64 lowercase hex/],
    [`ubuntu@sha512:${'a'.repeat(128)}`, /only sha256/],
    [`ubuntu@${D}@${D}`, /more than one "@"/],
    ['https://registry.hub.docker.com/library/centos:centos7', /URL scheme/],
    ['-bad.example.com/x', /registry "-bad.example.com"/],
    ['host.example.com:port/x', /registry/],
    [`quay.io/${'a'.repeat(250)}`, /longer than 255/],
    // Docker's grammar: a bare 64-hex string is an image ID, never docker.io/library/<hex>.
    [HEX2, /cannot specify 64-byte hexadecimal strings.*image ID/],
    [`docker://${HEX2}`, /cannot specify 64-byte hexadecimal strings/],
    [D, /image ID/],
  ]
  it.each(invalid)('rejects %j', (input, reason) => {
    let caught: unknown
    try {
      parseReference(input)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(UsageError)
    const error = caught as UsageError
    expect(error.code).toBe('E_BAD_REFERENCE')
    expect(error.exitCode).toBe(2)
    expect(error.message).toContain(JSON.stringify(input))
    expect(error.message).toMatch(reason)
  })
})

describe('layoutRegistries / layoutName', () => {
  const cases: [input: string, registries: string[], name: string][] = [
    ['ubuntu:22.04', ['registry.hub.docker.com', 'docker.io', 'index.docker.io'], 'registry.hub.docker.com/library/ubuntu:22.04'],
    ['ubuntu', ['registry.hub.docker.com', 'docker.io', 'index.docker.io'], 'registry.hub.docker.com/library/ubuntu:latest'],
    ['atlas/analysisbase:21.2.1', ['registry.hub.docker.com', 'docker.io', 'index.docker.io'], 'registry.hub.docker.com/atlas/analysisbase:21.2.1'],
    ['127.0.0.1:5000/foo/bar:1', ['127.0.0.1:5000'], '127.0.0.1:5000/foo/bar:1'],
    ['gitlab-registry.cern.ch/unpacked/sync:x', ['gitlab-registry.cern.ch'], 'gitlab-registry.cern.ch/unpacked/sync:x'],
    [`quay.io/a/b@${D}`, ['quay.io'], `quay.io/a/b:${D}`],
    [`ubuntu@${D}`, ['registry.hub.docker.com', 'docker.io', 'index.docker.io'], `registry.hub.docker.com/library/ubuntu:${D}`],
    [`ubuntu:22.04@${D}`, ['registry.hub.docker.com', 'docker.io', 'index.docker.io'], 'registry.hub.docker.com/library/ubuntu:22.04'],
  ]
  it.each(cases)('%s', (input, registries, name) => {
    const ref = parseReference(input)
    expect(layoutRegistries(ref)).toEqual(registries)
    expect(layoutName(ref)).toBe(name)
  })

  it('names the link under another registry directory on request', () => {
    expect(layoutName(parseReference('ubuntu:22.04'), 'docker.io')).toBe('docker.io/library/ubuntu:22.04')
  })

  it('defaults a reference without tag or digest to latest', () => {
    expect(layoutName({registry: 'quay.io', repository: 'a/b'})).toBe('quay.io/a/b:latest')
  })
})

describe('parseLayoutName', () => {
  const cases: [name: string, reference: string][] = [
    ['registry.hub.docker.com/library/ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['registry.hub.docker.com/atlas/analysisbase:21.2.1', 'docker.io/atlas/analysisbase:21.2.1'],
    ['127.0.0.1:5000/foo/bar:1', '127.0.0.1:5000/foo/bar:1'],
    [`quay.io/a/b:sha256:${HEX2}`, `quay.io/a/b@sha256:${HEX2}`],
    [`registry.hub.docker.com/library/x:sha256:${HEX2}`, `docker.io/library/x@sha256:${HEX2}`],
    // The first component is the registry even without a dot.
    ['myregistry/foo:1', 'myregistry/foo:1'],
  ]
  it.each(cases)('%s', (name, reference) => {
    const ref = parseLayoutName(name)
    expect(formatReference(ref)).toBe(reference)
    expect(layoutName(ref, name.slice(0, name.indexOf('/')))).toBe(name)
  })

  it.each(['ubuntu:1', 'quay.io/a/b', 'quay.io/a/b:sha256:xyz', 'quay.io/A:1', 'quay.io/a:-x'])('rejects %j', (name) => {
    expect(() => parseLayoutName(name)).toThrow(UsageError)
  })
})

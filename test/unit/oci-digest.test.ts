import {describe, expect, it} from 'vitest'

import {VerificationError} from '../../src/errors.js'
import {parseDigest, sha256Digest} from '../../src/oci/digest.js'

const HEX = 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4'

describe('parseDigest', () => {
  it('accepts sha256 with 64 lowercase hex digits', () => {
    expect(parseDigest(`sha256:${HEX}`)).toEqual({algorithm: 'sha256', hex: HEX})
  })

  it.each([
    ['uppercase hex', `sha256:${HEX.toUpperCase()}`, /bad digest/],
    ['63 digits', `sha256:${HEX.slice(1)}`, /bad digest/],
    ['65 digits', `sha256:${HEX}0`, /bad digest/],
    ['no algorithm', HEX, /bad digest/],
    ['empty', '', /bad digest/],
    ['uppercase algorithm', `SHA256:${HEX}`, /bad digest/],
    ['trailing newline', `sha256:${HEX}\n`, /bad digest/],
    ['path traversal', 'sha256:../../etc/passwd', /bad digest/],
    ['sha512', `sha512:${HEX}${HEX}`, /unsupported digest algorithm "sha512".*only sha256/],
    ['blake3', `blake3:${HEX}`, /unsupported digest algorithm "blake3"/],
  ])('rejects %s', (_name, input, message) => {
    let caught: unknown
    try {
      parseDigest(input)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(VerificationError)
    expect((caught as VerificationError).code).toBe('E_BAD_DIGEST')
    expect((caught as VerificationError).exitCode).toBe(4)
    expect((caught as VerificationError).message).toMatch(message)
  })

  it('names where the digest came from and shortens huge input', () => {
    expect(() => parseDigest(`sha256:${'x'.repeat(10_000)}`, 'layer 3 of manifest of docker://x/y:1')).toThrow(
      /^bad digest in layer 3 of manifest of docker:\/\/x\/y:1: "sha256:x{80}…"/,
    )
  })

  it('rejects a non-string at run time', () => {
    expect(() => parseDigest(42 as unknown as string)).toThrow(VerificationError)
  })
})

describe('sha256Digest', () => {
  it.each([
    ['', 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['{}', 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'],
  ])('hashes %j', (input, digest) => {
    expect(sha256Digest(Buffer.from(input))).toBe(digest)
  })

  it('round-trips through parseDigest', () => {
    expect(parseDigest(sha256Digest(Buffer.from('layer'))).hex).toMatch(/^[a-f0-9]{64}$/)
  })
})

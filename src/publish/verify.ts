/**
 * Checks of an image's documents against each other, before any layer is read:
 * the manifest's digest (when the user or an index pinned it), the config blob's
 * digest and size, the number of DiffIDs, the platform.
 */
import {VerificationError} from '../errors.js'
import {sha256Digest} from '../oci/digest.js'
import type {ImageConfig, ImageManifest} from '../oci/documents.js'
import {formatPlatform, normalizePlatform, type PlatformRequest, type PlatformSpec} from '../oci/platform.js'
import type {Logger} from '../log.js'

export function verifyDigest(bytes: Buffer, expected: string, what: string): void {
  const got = sha256Digest(bytes)
  if (got !== expected) {
    throw new VerificationError(`${what}: digest mismatch: got ${got} expected ${expected}`, {
      code: 'E_DIGEST_MISMATCH',
      hint: 'The registry or archive served different bytes than were asked for; it is corrupt or was tampered with.',
    })
  }
}

export function verifyConfigBlob(configBytes: Buffer, manifest: ImageManifest, what: string): void {
  if (configBytes.length !== manifest.config.size) {
    throw new VerificationError(`config of ${what}: size mismatch: got ${configBytes.length} bytes, the manifest says ${manifest.config.size}`, {
      code: 'E_SIZE_MISMATCH',
    })
  }
  verifyDigest(configBytes, manifest.config.digest, `config of ${what}`)
}

export function verifyDiffIds(manifest: ImageManifest, config: ImageConfig, what: string): void {
  const diffIds = config.rootfs?.diff_ids ?? []
  if (diffIds.length !== manifest.layers.length) {
    throw new VerificationError(
      `${what}: the manifest lists ${manifest.layers.length} layer(s) but the config's rootfs.diff_ids has ${diffIds.length}`,
      {code: 'E_DIFFID_COUNT'},
    )
  }
}

/** The config's platform must be the one asked for (a warning when nobody asked). */
export function checkPlatform(config: ImageConfig, wanted: PlatformSpec, explicit: boolean, what: string, logger: Logger): void {
  const os = config.os ?? 'linux'
  const arch = config.architecture
  if (os === wanted.os && arch === wanted.architecture) return
  const got = formatPlatform({os, architecture: arch ?? 'unknown', variant: config.variant})
  const message = `${what} is built for ${got}, not ${formatPlatform(wanted)}`
  if (explicit) {
    throw new VerificationError(message, {code: 'E_PLATFORM_MISMATCH', hint: 'Pick another tag, or another --platform.'})
  }
  logger.warn(`${message}; publishing it anyway (use --platform to make this an error)`)
}

/**
 * An image that is no index, published with `--platform all` or a list: any platform
 * does for `all`; a list must name the config's platform (os and architecture, variants
 * compared as OCI normalises them when the config states one).
 */
export function checkPlatformListed(config: ImageConfig, request: PlatformRequest, what: string): void {
  if (request.all) return
  const have = normalizePlatform({os: config.os ?? 'linux', architecture: config.architecture ?? 'unknown', variant: config.variant})
  const matches = request.platforms.some((p) => {
    const want = normalizePlatform(p)
    return want.os === have.os && want.architecture === have.architecture && (config.variant === undefined || want.variant === have.variant)
  })
  if (matches) return
  throw new VerificationError(`${what} is built for ${formatPlatform(have)}, none of ${request.platforms.map(formatPlatform).join(', ')}`, {
    code: 'E_PLATFORM_MISMATCH',
    hint: 'Pick another tag, or list its platform in --platform.',
  })
}

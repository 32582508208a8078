/**
 * The skopeo driver. skopeo reads the user's containers configuration
 * (registries.conf, auth.json, policy.json, certs.d, proxies) exactly as podman
 * does, so a registry podman reaches is a registry we reach. Images are copied into an
 * `oci:` layout with `--preserve-digests`, which keeps manifests byte for byte, Docker
 * schema 2 ones included (test/e2e/publish-republish.test.ts), and takes the layers of
 * an image at the same time (a `dir:` destination takes them one after the other: a
 * four-layer image copied in 0.45 s instead of 0.26 s here). Blobs that are not needed
 * (layers a published root holds already) are put there first as placeholders: skopeo
 * skips a blob its destination already has, so they are never fetched.
 */
import {closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {ExternalError, NotFoundError, UserError, VerificationError} from '../errors.js'
import {run, runBrief} from '../exec.js'
import {readFile} from '../fs-promises.js'
import type {Logger} from '../log.js'
import type {PlatformSpec} from '../oci/platform.js'

export interface RegistryOptions {
  /** `--tls-verify`: require HTTPS and verify certificates (default: skopeo's own, true). */
  tlsVerify?: boolean
  /** `--creds USER[:PASS]`. */
  creds?: string
  /** `--authfile PATH`. */
  authfile?: string
  /** `--cert-dir PATH`. */
  certDir?: string
}

const MISSING = 'skopeo is needed to fetch images: apt install skopeo (Debian/Ubuntu) or dnf install skopeo (EL/Fedora).'

/** skopeo's global options that pick one instance of a multi-platform image. */
function platformArgs(platform?: PlatformSpec): string[] {
  if (!platform) return []
  const args = ['--override-os', platform.os, '--override-arch', platform.architecture]
  if (platform.variant) args.push('--override-variant', platform.variant)
  return args
}

/** Registry options, spelt for `inspect` (`--x`) or the source side of `copy` (`--src-x`). */
function registryArgs(options: RegistryOptions, prefix: '' | 'src-'): string[] {
  const args: string[] = []
  if (options.tlsVerify !== undefined) args.push(`--${prefix}tls-verify=${options.tlsVerify}`)
  if (options.creds !== undefined) args.push(`--${prefix}creds`, options.creds)
  if (options.authfile !== undefined) args.push(`--${prefix}authfile`, options.authfile)
  if (options.certDir !== undefined) args.push(`--${prefix}cert-dir`, options.certDir)
  return args
}

/** The raw top-level manifest (or index) of an image, byte for byte. */
export async function inspectRaw(ref: string, options: RegistryOptions, logger: Logger, signal?: AbortSignal): Promise<Buffer> {
  const result = await skopeo(['inspect', '--raw', ...registryArgs(options, ''), ref], ref, logger, signal, true)
  return result.stdoutBytes!
}

/** The raw config blob of the instance skopeo picks for `platform`. */
export async function inspectConfigRaw(ref: string, options: RegistryOptions, platform: PlatformSpec | undefined, logger: Logger, signal?: AbortSignal): Promise<Buffer> {
  const result = await skopeo([...platformArgs(platform), 'inspect', '--config', '--raw', ...registryArgs(options, ''), ref], ref, logger, signal, true)
  return result.stdoutBytes!
}

/** The tags of a registry repository, `docker://REGISTRY/REPOSITORY` (`skopeo list-tags`). */
export async function listTags(repository: string, options: RegistryOptions, logger: Logger): Promise<string[]> {
  const result = await skopeo(['list-tags', '--retry-times', '2', ...registryArgs(options, ''), repository], repository, logger, undefined, true)
  const json = JSON.parse(result.stdout) as {Tags?: unknown}
  return Array.isArray(json.Tags) ? json.Tags.filter((tag): tag is string => typeof tag === 'string') : []
}

/** A blob the destination must not fetch. */
export interface SkippedBlob {
  digest: string
  size: number
}

/** The tag an {@link copyToOciLayout} layout holds its image under. */
const OCI_TAG = 'image'

/**
 * Copy one image instance into an OCI layout at `dest`, without fetching the blobs in
 * `skip`: each is there first as a sparse placeholder of its size (skopeo takes a blob
 * its OCI destination already holds as copied). The placeholders are never read: only
 * blobs outside `skip` are, and each is verified against its digest when it is.
 */
export async function copyToOciLayout(
  ref: string,
  dest: string,
  skip: readonly SkippedBlob[],
  options: RegistryOptions,
  platform: PlatformSpec | undefined,
  logger: Logger,
  signal?: AbortSignal,
): Promise<void> {
  // Synchronous, like the spawn below: the download starts before the caller goes on
  // (to a clone of a published root that keeps the event loop busy).
  const blobs = join(dest, 'blobs', 'sha256')
  mkdirSync(blobs, {recursive: true})
  writeFileSync(join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  for (const blob of skip) {
    const fd = openSync(join(blobs, blob.digest.replace(/^sha256:/, '')), 'w')
    try {
      ftruncateSync(fd, blob.size)
    } finally {
      closeSync(fd)
    }
  }
  if (skip.length > 0) logger.debug(`not fetching ${skip.length} blob(s) a published root holds: ${skip.map((b) => b.digest.slice(0, 19)).join(', ')}`)
  await skopeo(
    [
      ...platformArgs(platform),
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-oci-accept-uncompressed-layers',
      '--retry-times',
      '2',
      ...registryArgs(options, 'src-'),
      ref,
      `oci:${dest}:${OCI_TAG}`,
    ],
    ref,
    logger,
    signal,
  )
}

/** Where blob `<hex>` lives in a layout {@link copyToOciLayout} writes. */
export function ociBlobPath(dest: string, digestHex: string): string {
  return join(dest, 'blobs', 'sha256', digestHex)
}

/** The manifest bytes {@link copyToOciLayout} wrote. */
export async function readOciLayoutManifest(dest: string): Promise<Buffer> {
  const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as {manifests?: {digest?: string; annotations?: Record<string, string>}[]}
  const entry = index.manifests?.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === OCI_TAG)
  if (!entry?.digest?.startsWith('sha256:')) {
    throw new VerificationError(`skopeo left no image in ${dest} (its index.json names none)`, {code: 'E_MISSING_BLOB', hint: 'Run again with --debug to see what skopeo did.'})
  }
  return readFile(ociBlobPath(dest, entry.digest.slice('sha256:'.length)))
}

/**
 * Run skopeo. `brief`: a short call (inspect, list-tags) through Node's own spawn (see
 * runBrief); copies go through execa, which also stops them if cvmfs-oci is killed.
 */
async function skopeo(args: string[], ref: string, logger: Logger, signal?: AbortSignal, brief = false) {
  try {
    return await (brief ? runBrief : run)('skopeo', args, {logger, missingHint: MISSING, binaryStdout: true, signal})
  } catch (error) {
    throw explain(error, ref)
  }
}

/** Turn skopeo's failures into errors that say what to do. */
export function explain(error: unknown, ref: string): unknown {
  if (!(error instanceof ExternalError) || error.code === 'E_MISSING_PROGRAM') return error
  const text = error.stderrTail
  const cause = error
  if (/digest did not match|size mismatch|unexpected blob size/i.test(text)) {
    return new VerificationError(`${ref}: a blob does not match its digest: ${lastMessage(text)}`, {
      code: 'E_DIGEST_MISMATCH',
      hint: 'The registry or archive is corrupt or was tampered with; nothing was published.',
      cause,
    })
  }
  if (/manifest unknown|name unknown|not found|no such file or directory|does not exist|no image found/i.test(text)) {
    return new NotFoundError(`image ${ref} was not found: ${lastMessage(text)}`, {
      code: 'E_SOURCE_NOT_FOUND',
      hint: 'Check the name and tag (skopeo list-tags docker://REGISTRY/REPOSITORY lists the tags of a registry image).',
      cause,
    })
  }
  if (/server gave HTTP response to HTTPS client/i.test(text)) {
    return new UserError(`registry of ${ref} speaks plain HTTP: ${lastMessage(text)}`, {
      code: 'E_REGISTRY_TLS',
      hint: 'For a registry without TLS, pass --tls-verify=false (or list it as insecure in registries.conf).',
      cause,
    })
  }
  if (/x509|certificate/i.test(text)) {
    return new UserError(`TLS verification of the registry of ${ref} failed: ${lastMessage(text)}`, {
      code: 'E_REGISTRY_TLS',
      hint: 'Install the registry CA in /etc/containers/certs.d/HOST:PORT/ca.crt, use --cert-dir, or (for testing) --tls-verify=false.',
      cause,
    })
  }
  if (/unauthorized|authentication required|denied|401|403/i.test(text)) {
    return new UserError(`the registry refused access to ${ref}: ${lastMessage(text)}`, {
      code: 'E_REGISTRY_AUTH',
      hint: 'Log in with `podman login` (or skopeo login), or pass --creds USER:PASSWORD or --authfile FILE.',
      cause,
    })
  }
  if (/connection refused|no such host|i\/o timeout|network is unreachable|dial tcp/i.test(text)) {
    return new UserError(`cannot reach the registry of ${ref}: ${lastMessage(text)}`, {
      code: 'E_REGISTRY_UNREACHABLE',
      hint: 'Check the host and port, the network, and proxy settings (HTTPS_PROXY).',
      cause,
    })
  }
  return error
}

/** skopeo logs `time=… level=fatal msg="…"`; keep the message. */
function lastMessage(text: string): string {
  const line = text.trim().split('\n').pop() ?? ''
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line)
  return m ? m[1]!.replace(/\\"/g, '"') : line
}

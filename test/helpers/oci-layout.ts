/**
 * OCI image layouts (image-spec v1.1 `oci-layout`, `index.json`,
 * `blobs/sha256/*`) written in code, plus ways to break them for negative tests.
 */
import {createHash} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {promisify} from 'node:util'
import zlib from 'node:zlib'
import {buildTar, type TarEntry} from './tar.js'
import {whichTool} from './tools.js'

/** OCI media types and the annotation that tags an index.json entry. */
export const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json'
export const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar'
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'

/** One layer: its entries and how its blob is compressed (default gzip). */
export interface LayerSpec {
  entries: TarEntry[]
  compression?: 'gzip' | 'none' | 'zstd'
  /** Negative tests: write this into the config's `rootfs.diff_ids` instead of the true DiffID. */
  diffIdOverride?: string
}

/** The runtime part of an image config. */
export interface ImageRuntimeConfig {
  Env?: string[]
  Cmd?: string[]
  Entrypoint?: string[]
  WorkingDir?: string
  User?: string
  Labels?: Record<string, string>
}

/** An image to write: layers bottom first, config and platform. */
export interface ImageSpec {
  layers: LayerSpec[]
  config?: ImageRuntimeConfig
  /** Default `amd64`. */
  architecture?: string
  /** Default `linux`. */
  os?: string
  variant?: string
  /** Default `2024-01-01T00:00:00Z`, so digests are reproducible. */
  created?: string
  /** Manifest annotations. */
  annotations?: Record<string, string>
}

/** What {@link writeOciLayout} wrote for one image. */
export interface WrittenImage {
  manifestDigest: string
  configDigest: string
  /** Digests of the layer blobs as stored (compressed). */
  layerDigests: string[]
  /** sha256 of each uncompressed layer tar, as in the config (unless overridden). */
  diffIds: string[]
  manifest: object
  config: object
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: {architecture: string; os: string; variant?: string}
}

/** `sha256:<hex>` of some bytes. */
export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

/** Path of a blob inside a layout. */
export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':')
  if (!algorithm || !hex) throw new Error(`not a digest: ${digest}`)
  return path.join(layoutDir, 'blobs', algorithm, hex)
}

/** Store bytes as a blob (content-addressed, so writing twice is harmless). */
export async function writeBlob(layoutDir: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data)
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), {recursive: true})
  await writeFile(blobPath(layoutDir, digest), data)
  return digest
}

async function writeJsonBlob(layoutDir: string, mediaType: string, value: object): Promise<Descriptor> {
  const data = Buffer.from(JSON.stringify(value))
  return {mediaType, digest: await writeBlob(layoutDir, data), size: data.length}
}

async function zstdCompress(data: Buffer): Promise<Buffer> {
  // node:zlib has zstd from Node 22.15; Node 20 (the machines here) does not.
  const z = zlib as unknown as {zstdCompress?: (buf: Buffer, cb: (err: Error | null, out: Buffer) => void) => void}
  if (typeof z.zstdCompress === 'function') return promisify(z.zstdCompress)(data)
  if (whichTool('zstd') !== undefined) {
    const {execa} = await import('execa')
    const out = await execa('zstd', ['-q', '-c', '--no-progress'], {input: data, encoding: 'buffer'})
    return Buffer.from(out.stdout)
  }
  throw new Error(`zstd layers need node:zlib zstd (Node >= 22.15, this is ${process.version}) or the zstd program (Debian package zstd)`)
}

async function compress(tar: Buffer, compression: LayerSpec['compression']): Promise<{data: Buffer; mediaType: string}> {
  switch (compression ?? 'gzip') {
    case 'none':
      return {data: tar, mediaType: MEDIA_TYPE_LAYER}
    case 'gzip':
      return {data: await promisify(zlib.gzip)(tar), mediaType: `${MEDIA_TYPE_LAYER}+gzip`}
    case 'zstd':
      return {data: await zstdCompress(tar), mediaType: `${MEDIA_TYPE_LAYER}+zstd`}
    default:
      throw new Error(`unknown compression ${String(compression)}`)
  }
}

async function writeImage(layoutDir: string, image: ImageSpec): Promise<{written: WrittenImage; descriptor: Descriptor}> {
  const layers: Descriptor[] = []
  const diffIds: string[] = []
  for (const layer of image.layers) {
    const tar = await buildTar(layer.entries)
    const {data, mediaType} = await compress(tar, layer.compression)
    layers.push({mediaType, digest: await writeBlob(layoutDir, data), size: data.length})
    diffIds.push(layer.diffIdOverride ?? sha256Digest(tar))
  }
  const created = image.created ?? '2024-01-01T00:00:00Z'
  const platform = {architecture: image.architecture ?? 'amd64', os: image.os ?? 'linux', ...(image.variant ? {variant: image.variant} : {})}
  const config = {
    created,
    ...platform,
    config: image.config ?? {},
    rootfs: {type: 'layers', diff_ids: diffIds},
    history: image.layers.map((_, i) => ({created, created_by: `test/helpers/oci-layout.ts layer ${i}`})),
  }
  const configDesc = await writeJsonBlob(layoutDir, MEDIA_TYPE_CONFIG, config)
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: configDesc,
    layers,
    ...(image.annotations ? {annotations: image.annotations} : {}),
  }
  const manifestDesc = await writeJsonBlob(layoutDir, MEDIA_TYPE_MANIFEST, manifest)
  return {
    written: {
      manifestDigest: manifestDesc.digest,
      configDigest: configDesc.digest,
      layerDigests: layers.map((l) => l.digest),
      diffIds,
      manifest,
      config,
    },
    descriptor: {...manifestDesc, platform},
  }
}

async function readIndex(layoutDir: string): Promise<{schemaVersion: number; mediaType?: string; manifests: Descriptor[]}> {
  try {
    return JSON.parse(await readFile(path.join(layoutDir, 'index.json'), 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: []}
    throw err
  }
}

/** Add (or replace) the tagged entry of a layout's index.json, creating the layout if needed. */
async function tagInLayout(layoutDir: string, tag: string, descriptor: Descriptor): Promise<void> {
  await mkdir(layoutDir, {recursive: true})
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const index = await readIndex(layoutDir)
  index.manifests = index.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== tag)
  index.manifests.push({...descriptor, annotations: {...descriptor.annotations, [ANNOTATION_REF_NAME]: tag}})
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify(index))
}

/**
 * Write single-platform images into an OCI layout (created if missing; other
 * tags already there are kept). Each image is tagged through the
 * `org.opencontainers.image.ref.name` annotation of its index.json entry.
 */
export async function writeOciLayout(layoutDir: string, images: {tag: string; image: ImageSpec}[]): Promise<WrittenImage[]> {
  const out: WrittenImage[] = []
  for (const {tag, image} of images) {
    const {written, descriptor} = await writeImage(layoutDir, image)
    const {platform: _platform, ...plain} = descriptor
    await tagInLayout(layoutDir, tag, plain)
    out.push(written)
  }
  return out
}

/**
 * Write a multi-platform image: an image index blob (one manifest per
 * platform, with `platform` set) tagged `tag` in the layout's index.json.
 */
export async function writeOciIndexLayout(
  layoutDir: string,
  tag: string,
  platformImages: ImageSpec[],
): Promise<{indexDigest: string; index: object; images: WrittenImage[]}> {
  const images: WrittenImage[] = []
  const manifests: Descriptor[] = []
  for (const image of platformImages) {
    const {written, descriptor} = await writeImage(layoutDir, image)
    images.push(written)
    manifests.push(descriptor)
  }
  const index = {schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests}
  const indexDesc = await writeJsonBlob(layoutDir, MEDIA_TYPE_INDEX, index)
  await tagInLayout(layoutDir, tag, indexDesc)
  return {indexDigest: indexDesc.digest, index, images}
}

/**
 * Damage a blob in place for negative tests: its file keeps its name (the
 * digest) but its bytes no longer match. By default one byte in the middle is
 * flipped; pass `replacement` to write other bytes instead.
 */
export async function corruptBlob(layoutDir: string, digest: string, replacement?: Buffer): Promise<void> {
  const file = blobPath(layoutDir, digest)
  const data = await readFile(file)
  if (replacement === undefined) {
    if (data.length === 0) throw new Error(`corruptBlob: ${digest} is empty`)
    data[Math.floor(data.length / 2)] ^= 0xff
    await writeFile(file, data)
  } else {
    await writeFile(file, replacement)
  }
}

/** A one-layer image holding `/etc/version` with `content`: distinct content, distinct image. */
export function versionImage(content: string): ImageSpec {
  return {layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/version', content}]}]}
}

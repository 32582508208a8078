/**
 * The `manifest.json` DUCC keeps under `.metadata/<name>/` (and
 * `.metadata/.multiarch/<arch>/<name>/`). DUCC marshals its own Go struct without
 * JSON tags, so the keys are the capitalised Go field names; other tools that read
 * these files (and DUCC's garbage collector) expect exactly that form.
 */
import type {ImageManifest} from './documents.js'

/** A blob as `readManifestAnyCase` reports it. */
export interface BlobRef {
  digest: string
  size: number
  mediaType?: string
}

/** The part of a stored manifest cvmfs-oci needs: change detection and GC. */
export interface StoredManifest {
  mediaType?: string
  config: BlobRef
  layers: BlobRef[]
}

/**
 * Serialise a manifest as DUCC does: Go's default `json.Marshal` of
 * `{SchemaVersion int; MediaType string; Config {MediaType; Size; Digest}; Layers []…}`,
 * compact, keys in struct order, no trailing newline. An OCI manifest without
 * `mediaType` gives `"MediaType":""`, the Go zero value.
 */
export function toDuccManifest(manifest: ImageManifest): string {
  const blob = (d: {mediaType: string; size: number; digest: string}) => ({
    MediaType: d.mediaType,
    Size: d.size,
    Digest: d.digest,
  })
  const json = JSON.stringify({
    SchemaVersion: manifest.schemaVersion,
    MediaType: manifest.mediaType ?? '',
    Config: blob(manifest.config),
    Layers: manifest.layers.map(blob),
  })
  // Go escapes these by default (HTML safety); JSON.stringify does not.
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

/**
 * Read a stored manifest whatever the case of its keys: DUCC's `Config`/`Digest` or
 * the registry's `config`/`digest` (Go's decoder, which DUCC uses, matches keys
 * case-insensitively). `"Layers": null` (Go's nil slice) reads as no layers.
 *
 * @returns `undefined` when the document does not have the shape of a manifest
 *   (no config digest, a size that is not a non-negative integer, …)
 */
export function readManifestAnyCase(json: unknown): StoredManifest | undefined {
  if (!isObject(json)) return undefined
  const config = readBlob(field(json, 'config'))
  if (!config) return undefined
  const rawLayers = field(json, 'layers')
  if (rawLayers !== undefined && rawLayers !== null && !Array.isArray(rawLayers)) return undefined
  const layers: BlobRef[] = []
  for (const raw of (rawLayers as unknown[] | null | undefined) ?? []) {
    const layer = readBlob(raw)
    if (!layer) return undefined
    layers.push(layer)
  }
  const result: StoredManifest = {config, layers}
  const mediaType = optionalString(field(json, 'mediaType'))
  if (mediaType) result.mediaType = mediaType
  return result
}

function readBlob(value: unknown): BlobRef | undefined {
  if (!isObject(value)) return undefined
  const digest = field(value, 'digest')
  const size = field(value, 'size')
  if (typeof digest !== 'string' || !DIGEST.test(digest)) return undefined
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return undefined
  const blob: BlobRef = {digest, size}
  const mediaType = optionalString(field(value, 'mediaType'))
  if (mediaType) blob.mediaType = mediaType
  return blob
}

// The lower-case (OCI) key first, then any key that differs only in case (DUCC's).
function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name]
  const lower = name.toLowerCase()
  for (const key of Object.keys(obj)) if (key.toLowerCase() === lower) return obj[key]
  return undefined
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * The JSON documents of an image (manifest, index, config): their types, and the
 * parsers that turn untrusted bytes into them. Everything fetched is hostile until it
 * has passed the schemas in `schemas/`, compiled ahead of time so that no ajv compiler
 * is loaded here.
 */
import {VerificationError} from '../errors.js'
import validateConfigSchema from '../generated/image-config.validator.js'
import validateIndexSchema from '../generated/image-index.validator.js'
import validateManifestSchema from '../generated/image-manifest.validator.js'
import {isIndexMediaType, isManifestMediaType, isSchema1MediaType} from './media-types.js'
import {formatSchemaErrors, type SchemaValidator} from './schema-errors.js'

/** Where an image runs (OCI `platform`, also Docker manifest lists). */
export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
  features?: string[]
}

/** A content descriptor: what a manifest or index says about a blob it references. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  /** The content itself, base64 (image-spec 1.1). */
  data?: string
  artifactType?: string
  /** Only meaningful on the entries of an index. */
  platform?: Platform
}

/** An OCI image manifest or a Docker v2 schema 2 manifest. */
export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/** An OCI image index or a Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

/**
 * The container defaults of an image config. Docker writes `null` for empty lists and
 * maps, and many more fields than OCI defines (Hostname, Healthcheck, OnBuild …).
 */
export interface ContainerConfig {
  User?: string
  /** A set written as a map to `{}`, e.g. `{"80/tcp": {}}`. */
  ExposedPorts?: Record<string, object> | null
  Env?: string[] | null
  Entrypoint?: string[] | null
  Cmd?: string[] | null
  Volumes?: Record<string, object> | null
  WorkingDir?: string
  Labels?: Record<string, string> | null
  StopSignal?: string
  ArgsEscaped?: boolean
  [extra: string]: unknown
}

export interface HistoryEntry {
  created?: string
  author?: string
  created_by?: string
  comment?: string
  /** True when this step made no layer (so history and diff_ids do not align 1:1). */
  empty_layer?: boolean
}

/** An OCI image config or a Docker image JSON. */
export interface ImageConfig {
  created?: string
  author?: string
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
  config?: ContainerConfig
  rootfs: {type: 'layers'; diff_ids: string[]}
  history?: HistoryEntry[]
  [extra: string]: unknown
}

export type ManifestOrIndex = {kind: 'manifest'; manifest: ImageManifest} | {kind: 'index'; index: ImageIndex}

const SCHEMA1_HINT =
  'Docker schema 1 manifests are deprecated and carry no image config. Re-push the image with a current ' +
  'docker, podman or skopeo (e.g. `skopeo copy docker://SRC docker://DST`), which writes a schema 2 or OCI manifest.'

const SCHEMA_HINT =
  'The image follows neither the OCI image spec nor Docker\'s image format; ask its publisher to rebuild ' +
  'and push it with a current tool.'

/**
 * Parse the top-level document of an image reference: a single-platform manifest or
 * a multi-platform index.
 *
 * The kind is decided by `mediaType` when it names one, otherwise by shape (an index
 * has `manifests`, a manifest `layers`), because OCI documents may omit `mediaType`.
 *
 * @param what names the document in messages, e.g. `manifest of docker://x/y:1`
 * @throws VerificationError `E_BAD_JSON` (not JSON), `E_SCHEMA1` (Docker schema 1,
 *   with a hint to re-push), `E_SCHEMA` (fails the schema; the message lists the
 *   problems as `<JSON pointer>: <message>`)
 */
export function parseManifestOrIndex(bytes: Buffer, what: string): ManifestOrIndex {
  const doc = parseJson(bytes, what)
  const fields = isObject(doc) ? doc : {}
  const mediaType = typeof fields['mediaType'] === 'string' ? fields['mediaType'] : undefined
  if (fields['schemaVersion'] === 1 || isSchema1MediaType(mediaType)) {
    throw new VerificationError(`${what} is a Docker schema 1 manifest, which cvmfs-oci does not support`, {
      code: 'E_SCHEMA1',
      hint: SCHEMA1_HINT,
    })
  }
  const isIndex = isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && 'manifests' in fields && !('layers' in fields))
  if (isIndex) {
    check(validateIndexSchema, doc, what, 'image index (OCI index or Docker manifest list)')
    return {kind: 'index', index: doc as unknown as ImageIndex}
  }
  check(validateManifestSchema, doc, what, 'image manifest (OCI or Docker schema 2)')
  return {kind: 'manifest', manifest: doc as unknown as ImageManifest}
}

/**
 * Parse an image config blob (OCI image config or Docker image JSON).
 *
 * @param what names the document in messages, e.g. `config of docker://x/y:1`
 * @throws VerificationError `E_BAD_JSON` or `E_SCHEMA`
 */
export function parseConfig(bytes: Buffer, what: string): ImageConfig {
  const doc = parseJson(bytes, what)
  check(validateConfigSchema, doc, what, 'image config')
  return doc as ImageConfig
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (error) {
    throw new VerificationError(`${what} is not valid JSON: ${(error as Error).message}`, {
      code: 'E_BAD_JSON',
      cause: error,
    })
  }
}

function check(validate: SchemaValidator, doc: unknown, what: string, expected: string): void {
  if (validate(doc)) return
  const problems = formatSchemaErrors(validate.errors, doc)
  throw new VerificationError(`${what} is not a valid ${expected}:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
    code: 'E_SCHEMA',
    hint: SCHEMA_HINT,
  })
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

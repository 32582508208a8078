/**
 * Find the image configuration of a flat root without reading the image: the
 * directory's name is the config digest, so the config is a direct lookup —
 * our copy of the original bytes (`.metadata/.blobs/sha256/<hex>`), or, for roots
 * DUCC published, the config in the repository's podman store, or at least the
 * Env DUCC (or cvmfs-oci) wrote for apptainer into `.singularity.d/env/10-docker2singularity.sh`.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {sha256} from '@noble/hashes/sha2.js'
import {bytesToHex} from '@noble/hashes/utils.js'

import {BLOBS_DIR} from '../layout/paths.js'
import {ENV_SCRIPT, parseEnvScript} from '../layout/singularity.js'
import type {FlatRoot} from './flat-root.js'

/** The parts of an OCI image config the hook applies. */
export interface RunConfig {
  Env?: string[] | null
  WorkingDir?: string
  User?: string
}

export interface FoundConfig {
  config: RunConfig
  /** Where it came from, for messages. */
  source: string
}

function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw error
  }
}

/**
 * A config blob, checked against its digest (a stale or foreign file must not be applied).
 * Hashed in JavaScript (@noble/hashes, bundled into the hook): loading node:crypto, and
 * Node.js's streams with it, would add ~7 ms to every container start for a few kB.
 */
function fromBlob(bytes: Buffer, hex: string, source: string): FoundConfig {
  const actual = bytesToHex(sha256(bytes))
  if (actual !== hex) throw new Error(`${source} does not match its digest sha256:${hex} (it is sha256:${actual})`)
  const parsed = JSON.parse(bytes.toString('utf8')) as {config?: RunConfig | null}
  return {config: parsed.config ?? {}, source}
}

/** containers/storage names a big-data file `=` + base64 of its key when the key is not a plain name. */
function storeConfigNames(hex: string): string[] {
  const key = Buffer.from(`sha256:${hex}`)
  return [`=${key.toString('base64')}`, `=${key.toString('base64url')}`, `sha256:${hex}`]
}

/** The Env of an apptainer env script: ours (src/layout/singularity.ts), DUCC's and apptainer's. */
export const parseSingularityEnv = parseEnvScript

/** The config of a flat root, or undefined when the repository has none for it. */
export function findImageConfig(flat: FlatRoot): FoundConfig | undefined {
  const ours = join(flat.repository, BLOBS_DIR, flat.configHex)
  const bytes = readIfExists(ours)
  if (bytes) return fromBlob(bytes, flat.configHex, ours)
  for (const name of storeConfigNames(flat.configHex)) {
    const path = join(flat.repository, 'podmanStore', 'overlay-images', flat.configHex, name)
    const stored = readIfExists(path)
    if (stored) return fromBlob(stored, flat.configHex, path)
  }
  const script = join(flat.path, ENV_SCRIPT)
  const text = readIfExists(script)
  if (text) return {config: {Env: parseSingularityEnv(text.toString('utf8'))}, source: script}
  return undefined
}

/**
 * Open one layer blob as a verified tar stream: the compressed bytes are hashed and
 * counted as they are read, decompressed (gzip, zstd where Node.js has it, or
 * none — sniffed from the magic bytes, as containerd does, since archives made by
 * some tools carry a gzip media type on a plain tar), and the tar bytes are hashed
 * again, all in the layer reader's thread (layer-worker.ts). After the stream was
 * drained to its end, `verify()` compares the blob digest and size with the manifest
 * and the DiffID with the config.
 */
import {zlib} from '../builtins.js'

import {UserError, VerificationError} from '../errors.js'
import {open} from '../fs-promises.js'
import type {LayerReader} from './layer-worker.js'

export type Compression = 'gzip' | 'zstd' | 'none'

/** Identify a compression format from the first bytes of a blob. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd'
  return 'none'
}

export interface LayerExpectation {
  /** Compressed digest and size from the manifest. */
  digest: string
  size: number
  /** rootfs.diff_ids entry from the config. */
  diffId: string
  /** Short name for messages, e.g. "2/5 (sha256:ab12…)". */
  label: string
}

export interface OpenedLayer {
  compression: Compression
  /** The uncompressed tar bytes, hashed for the DiffID as they are taken. */
  chunks: AsyncIterable<Buffer>
  /** Throws VerificationError unless digest, size and DiffID all match. */
  verify(): void
  /** Uncompressed bytes seen so far. */
  tarBytes(): number
  /** Stop reading (after an error elsewhere). */
  destroy(): void
}

/** zstd needs Node.js ≥ 22.15 (zlib.createZstdDecompress). */
function checkZstd(label: string): void {
  if (typeof (zlib() as unknown as {createZstdDecompress?: unknown}).createZstdDecompress !== 'function') {
    throw new UserError(`layer ${label} is zstd-compressed, and this Node.js (${process.version}) cannot decompress zstd`, {
      code: 'E_ZSTD_UNSUPPORTED',
      hint: 'Run cvmfs-oci with Node.js >= 22.15, or convert the image to gzip first: skopeo copy --dest-compress-format gzip SRC DEST',
    })
  }
}

/**
 * Open a layer blob: its tar bytes come from `reader` (a thread that hashes and
 * decompresses), `verify()` checks its sums once they were all taken.
 */
export async function openLayer(
  reader: LayerReader,
  blobPath: string,
  expect: LayerExpectation,
  onCompressedBytes?: (n: number) => void,
): Promise<OpenedLayer> {
  const head = Buffer.alloc(4)
  const handle = await open(blobPath, 'r')
  let headBytes: number
  try {
    ;({bytesRead: headBytes} = await handle.read(head, 0, 4, 0))
  } finally {
    await handle.close()
  }
  const compression = sniffCompression(head.subarray(0, headBytes))
  if (compression === 'zstd') checkZstd(expect.label)
  const read = reader.read(blobPath, compression, onCompressedBytes)
  let tarBytes = 0
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const piece of read.pieces) {
      tarBytes += piece.length
      yield piece
    }
  }
  return {
    compression,
    chunks: chunks(),
    tarBytes: () => tarBytes,
    destroy: () => read.cancel(),
    verify() {
      const sums = read.sums()
      const digest = `sha256:${sums.blobDigest}`
      if (sums.blobBytes !== expect.size) {
        throw new VerificationError(
          `layer ${expect.label}: size mismatch: got ${sums.blobBytes} bytes, the manifest says ${expect.size}`,
          {code: 'E_SIZE_MISMATCH', hint: 'The blob is truncated or was replaced; the registry or the archive is corrupt.'},
        )
      }
      if (digest !== expect.digest) {
        throw new VerificationError(`layer ${expect.label}: digest mismatch: got ${digest} expected ${expect.digest}`, {
          code: 'E_DIGEST_MISMATCH',
          hint: 'The blob does not match the manifest; the registry or the archive is corrupt or was tampered with.',
        })
      }
      const diffId = `sha256:${sums.tarDigest}`
      if (diffId !== expect.diffId) {
        throw new VerificationError(`layer ${expect.label}: diffid mismatch: got ${diffId} expected ${expect.diffId}`, {
          code: 'E_DIFFID_MISMATCH',
          hint: "The uncompressed layer does not match the config's rootfs.diff_ids; the image is inconsistent.",
        })
      }
    },
  }
}

/**
 * Merge an image's layers, bottom to top, into one root directory (the flat root),
 * verifying each layer's digest, size and DiffID as it streams. The target is a
 * staging directory: nothing here is visible to readers until the caller renames it.
 */
import {chmodSync, lchownSync, lutimesSync} from 'node:fs'
import {join, relative, resolve} from 'node:path'

import {CvmfsOciError, VerificationError} from '../errors.js'
import {someOf, type Logger} from '../log.js'
import {LayerApplier, MergeState} from './apply-entry.js'
import {openLayer, type Compression, type LayerExpectation, type OpenedLayer} from './layer-source.js'
import {LayerReader} from './layer-worker.js'
import {TarFormatError, TarParser} from './tar-parser.js'
import {cloneTree} from './clone-tree.js'
import {applyXattrs, readXattrsOf} from './xattrs.js'

export interface LayerInput {
  blobPath: string
  expect: LayerExpectation
}

export interface MergeOptions {
  /** An existing, empty directory: the flat root being built. */
  root: string
  /** A private directory for scratch files. */
  workDir: string
  layers: LayerInput[]
  logger: Logger
  /** Keep ownership, create device nodes, set security.* attributes (default: running as root). */
  isRoot?: boolean
  /** Called as compressed bytes of layer `index` are read. */
  onProgress?: (index: number, bytes: number) => void
  /** Wait until a blob exists (it may still be downloading when the merge starts). */
  waitForBlob?: (path: string) => Promise<void>
  /**
   * Start from this flat root (the merge of the layers before `layers`), minus `skip`;
   * `bytes`: the file content the clone holds (from the root's record), if known.
   */
  base?: {path: string; skip: string[]; bytes?: number}
}

export interface MergeStats {
  entries: number
  files: number
  /** Bytes of regular-file content written. */
  bytes: number
  /** Uncompressed tar bytes read. */
  tarBytes: number
  /** Bytes of file content the merged tree holds, each inode once (undefined: not counted exactly; measure the tree). */
  treeBytes?: number
  compressions: Compression[]
  /** Device nodes and FIFOs not created (not running as root). */
  skipped: string[]
}

export async function mergeLayers(options: MergeOptions): Promise<MergeStats> {
  const isRoot = options.isRoot ?? process.getuid?.() === 0
  // Absolute and without a trailing slash: paths below it are built by concatenation.
  const state = new MergeState(resolve(options.root), isRoot, options.logger)
  // Files are created with their final permission bits (see apply-entry.ts).
  const umask = process.umask(0)
  // Started first: its thread comes up while the base is cloned or the first blob downloads.
  const reader = new LayerReader()
  try {
    return await mergeInto(state, reader, options)
  } finally {
    process.umask(umask)
    // Not waited for (~10 ms): the thread has nothing left to read, and stops meanwhile.
    reader.close().catch(() => {})
  }
}

async function mergeInto(state: MergeState, reader: LayerReader, options: MergeOptions): Promise<MergeStats> {
  const compressions: Compression[] = []
  let tarBytes = 0
  // Each layer is opened one ahead of the layer being applied (the first one before the
  // base is cloned): the reader's thread reads, hashes and decompresses the first pieces
  // of the next blob while this thread writes files, instead of after.
  const opened: Promise<OpenedLayer>[] = []
  const open = (index: number): Promise<OpenedLayer> =>
    (opened[index] ??= (async () => {
      const input = options.layers[index]!
      await options.waitForBlob?.(input.blobPath)
      return openLayer(reader, input.blobPath, input.expect, (n) => options.onProgress?.(index, n))
    })())
  // Not awaited here: its failure is thrown where the layer is applied (or, after
  // another failure, dropped: the reader is closed with the merge).
  const openAhead = (index: number) => void (index < options.layers.length && open(index).catch(() => {}))
  openAhead(0)
  if (options.base) {
    const base = resolve(options.base.path)
    // The reader's thread takes its share of the links while the first layer is read.
    const cloned = await cloneTree(base, state, new Set(options.base.skip), reader)
    // Directory attributes live on the directory, not on a shared inode: copy them.
    for (const [path, attrs] of await readXattrsOf(cloned.dirs, options.logger)) state.xattrs.set(join(state.root, relative(base, path)), attrs)
    options.logger.debug(`started from ${options.base.path} (${cloned.entries} entries)`)
    state.clone = {created: new Set(), exact: options.base.bytes !== undefined}
    state.treeBytes = options.base.bytes ?? 0
  }
  for (const [index, input] of options.layers.entries()) {
    const waitStart = performance.now()
    const layer = await open(index)
    const applyStart = performance.now()
    openAhead(index + 1)
    compressions.push(layer.compression)
    const applier = new LayerApplier(state, input.expect.label, index > 0 || options.base !== undefined)
    const parser = new TarParser()
    try {
      for await (const chunk of layer.chunks) {
        parser.push(chunk)
        // Every entry whose bytes are here is applied before the next chunk is awaited.
        for (let event = parser.next(); event; event = parser.next()) {
          if (event.kind === 'data') applier.data(event.bytes)
          else if (event.kind === 'end') applier.end()
          else {
            const pending = applier.header(event.header)
            if (pending) await pending
          }
        }
        // The piece goes back to the reader, which fills it again.
        parser.release()
      }
      parser.end()
    } catch (error) {
      applier.abort()
      layer.destroy()
      throw asLayerFormatError(error, input.expect.label)
    }
    layer.verify()
    tarBytes += layer.tarBytes()
    const seconds = (ms: number) => (ms / 1000).toFixed(2)
    options.logger.debug(`layer ${input.expect.label}: ${seconds(applyStart - waitStart)} s waiting for its blob, ${seconds(performance.now() - applyStart)} s applying ${layer.tarBytes()} bytes`)
  }
  finishDirectories(state)
  await applyXattrs(state.xattrs, options.workDir, options.logger)
  if (state.skipped.length > 0) {
    options.logger.warn(`not running as root: device nodes and FIFOs were skipped: ${someOf(state.skipped, 20)}`)
  }
  const treeBytes = state.clone && !state.clone.exact ? undefined : state.treeBytes
  return {entries: state.entries, files: state.files, bytes: state.bytes, tarBytes, treeBytes, compressions, skipped: state.skipped}
}

/**
 * A layer that is not what it claims (not gzip, not a tar, truncated) is an invalid
 * image, not a bug: say so. zlib's errors carry Z_* codes; the tar parser's are TarFormatErrors.
 */
function asLayerFormatError(error: unknown, label: string): unknown {
  if (error instanceof CvmfsOciError) return error
  const {code, message} = error as {code?: string; message?: string}
  const zlib = typeof code === 'string' && code.startsWith('Z_')
  const tar = error instanceof TarFormatError
  if (!zlib && !tar) return error
  return new VerificationError(`layer ${label} is not a valid ${zlib ? 'compressed stream' : 'tar archive'}: ${message}`, {
    code: 'E_BAD_LAYER',
    hint: 'The blob is corrupt or its format is not the one the image says; nothing was published.',
    cause: error,
  })
}

/** Directory ownership, modes and mtimes, deepest first, after all children exist. */
function finishDirectories(state: MergeState): void {
  const dirs = [...state.dirs].sort((a, b) => b[0].length - a[0].length)
  for (const [path, meta] of dirs) {
    if (state.needsChown(meta.uid, meta.gid)) lchownSync(path, meta.uid, meta.gid)
    chmodSync(path, meta.mode)
    lutimesSync(path, meta.mtime, meta.mtime)
  }
}

// Generate benchmark images as OCI layouts, streaming (no layer is held in memory).
// The default shape: a base layer of many small files, a layer with large files, an
// upper layer with whiteouts and an opaque directory, and a top layer; `scale`
// multiplies file counts and sizes. The `four-layers` shape: four similar layers of
// ~1 200 files of ~13 KB (hardly compressible, ~15 MB gzip each), the upper three
// with whiteouts and an opaque directory.
import {createHash, randomBytes} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, rename, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {PassThrough} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'

import tar from 'tar-stream'

const POOL = randomBytes(1 << 20)
const WORDS = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua '

/** Deterministic content of `size` bytes: partly compressible, or (`random`) hardly at all. */
function content(seed, size, random = false) {
  const out = Buffer.allocUnsafe(size)
  let offset = 0
  let i = seed
  while (offset < size) {
    const n = Math.min(size - offset, 4096)
    const from = (seed * 7919 + i * 104729) % (POOL.length - n)
    if (i++ % 2 === 0 || random) POOL.copy(out, offset, from, from + n)
    else out.write(WORDS.repeat(Math.ceil(n / WORDS.length)).slice(0, n), offset)
    offset += n
  }
  return out
}

/**
 * Gzip a tar stream into the layout's blobs at `dir`: returns its digest, DiffID and
 * size. `tarStream` is any readable tar (tar-stream's pack, GNU tar's stdout).
 */
export async function writeLayerFromTar(dir, tarStream) {
  const gzip = createGzip({level: 6})
  const tarHash = createHash('sha256')
  const gzHash = createHash('sha256')
  const temp = join(dir, `layer-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const tap = new PassThrough()
  tap.on('data', (chunk) => tarHash.update(chunk))
  const gzTap = new PassThrough()
  gzTap.on('data', (chunk) => gzHash.update(chunk))
  await pipeline(tarStream, tap, gzip, gzTap, createWriteStream(temp))
  const digest = `sha256:${gzHash.digest('hex')}`
  const blob = join(dir, 'blobs', 'sha256', digest.slice(7))
  await rename(temp, blob)
  return {digest, diffId: `sha256:${tarHash.digest('hex')}`, size: (await stat(blob)).size}
}

/** Write one layer: entries come from a generator of {header, size, seed, random}. */
async function writeLayer(dir, entries) {
  const pack = tar.pack()
  const done = writeLayerFromTar(dir, pack)
  let bytes = 0
  let files = 0
  for (const entry of entries) {
    if ((entry.header.type ?? 'file') === 'file' && !entry.header.name.split('/').pop().startsWith('.wh.')) files++
    if (entry.size) {
      await new Promise((resolve, reject) => {
        const sink = pack.entry({...entry.header, size: entry.size}, (err) => (err ? reject(err) : resolve()))
        let left = entry.size
        const chunk = 1 << 20
        const write = () => {
          while (left > 0) {
            const n = Math.min(left, chunk)
            left -= n
            const ok = sink.write(content(entry.seed + left, n, entry.random))
            if (!ok) return sink.once('drain', write)
          }
          sink.end()
        }
        write()
      })
      bytes += entry.size
    } else {
      await new Promise((resolve, reject) => pack.entry(entry.header, entry.data ?? '', (err) => (err ? reject(err) : resolve())))
    }
  }
  pack.finalize()
  return {...(await done), bytes, files}
}

function* baseLayer(scale) {
  const files = 20000 * scale
  for (let d = 0; d < files / 100; d++) {
    yield {header: {name: `usr/share/pkg${d}/`, type: 'directory', mode: 0o755}}
    for (let f = 0; f < 100; f++) {
      const n = d * 100 + f
      yield {header: {name: `usr/share/pkg${d}/file${f}.txt`, mode: 0o644, mtime: new Date(1700000000000)}, size: 512 + ((n * 2654435761) % 6000), seed: n}
    }
    yield {header: {name: `usr/share/pkg${d}/link`, type: 'symlink', linkname: 'file0.txt'}}
  }
  yield {header: {name: 'usr/bin/', type: 'directory'}}
  yield {header: {name: 'usr/bin/tool', mode: 0o755}, size: 200000, seed: 1}
  yield {header: {name: 'usr/bin/tool-alias', type: 'link', linkname: 'usr/bin/tool'}}
}

function* bigLayer(scale) {
  yield {header: {name: 'opt/', type: 'directory'}}
  yield {header: {name: 'opt/data/', type: 'directory'}}
  for (let i = 0; i < 3 * scale; i++) yield {header: {name: `opt/data/big${i}.bin`, mode: 0o644}, size: 40 << 20, seed: 1000 + i}
  for (let i = 0; i < 5000 * scale; i++) yield {header: {name: `opt/lib/mod${i % 50}/m${i}.py`, mode: 0o644}, size: 2000 + (i % 3000), seed: 5000 + i}
}

function* upperLayer(scale) {
  const dirs = (20000 * scale) / 100
  for (let d = 0; d < dirs; d += 10) yield {header: {name: `usr/share/pkg${d}/.wh.file1.txt`}, data: ''}
  yield {header: {name: 'usr/share/pkg1/', type: 'directory'}}
  yield {header: {name: 'usr/share/pkg1/.wh..wh..opq'}, data: ''}
  for (let i = 0; i < 2000 * scale; i++) yield {header: {name: `etc/conf.d/c${i}.conf`, mode: 0o644}, size: 300 + (i % 700), seed: 90000 + i}
}

function* topLayer(tag) {
  yield {header: {name: 'app/', type: 'directory'}}
  yield {header: {name: `app/version`}, data: `${tag}\n`}
  yield {header: {name: 'app/payload.bin'}, size: 8 << 20, seed: tag.length}
}

/**
 * The four-layers shape: layer k holds 12 directories of 100 files of 8–18 KB
 * (random content: the gzip is about as large as the tar) and a symlink per
 * directory; layers 1–3 delete every tenth file of the layer below, replace a few of
 * its files, and layer 3 makes one directory of layer 0 opaque.
 */
function* fourLayer(k) {
  const seed = 200000 * (k + 1)
  if (k > 0) {
    for (let d = 0; d < 12; d++) {
      for (let f = 0; f < 100; f += 10) yield {header: {name: `usr/lib/l${k - 1}/d${d}/.wh.f${f}.so`}, data: ''}
      yield {header: {name: `usr/lib/l${k - 1}/d${d}/f1.so`, mode: 0o644}, size: 13000, seed: seed + 7000 + d, random: true}
    }
  }
  if (k === 3) {
    yield {header: {name: 'usr/lib/l0/d0/', type: 'directory', mode: 0o755}}
    yield {header: {name: 'usr/lib/l0/d0/.wh..wh..opq'}, data: ''}
  }
  for (let d = 0; d < 12; d++) {
    yield {header: {name: `usr/lib/l${k}/d${d}/`, type: 'directory', mode: 0o755}}
    for (let f = 0; f < 100; f++) {
      const n = d * 100 + f
      yield {header: {name: `usr/lib/l${k}/d${d}/f${f}.so`, mode: 0o755, mtime: new Date(1700000000000)}, size: 8192 + ((n * 2654435761) % 10240), seed: seed + n, random: true}
    }
    yield {header: {name: `usr/lib/l${k}/d${d}/current`, type: 'symlink', linkname: 'f0.so'}}
  }
}

/**
 * Write the OCI layout at `dir`: `images` is a list of {tag, layers, config}, where
 * `layers` come from writeLayer/writeLayerFromTar (already in the layout's blobs) and
 * `config` is the image config's `config` object (Env, Cmd, …).
 */
export async function writeImageLayout(dir, images) {
  await mkdir(join(dir, 'blobs', 'sha256'), {recursive: true})
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const manifests = []
  for (const {tag, layers, config: runConfig} of images) {
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created: '2024-01-01T00:00:00Z',
        config: runConfig,
        rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)},
      }),
    )
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
    await writeFile(join(dir, 'blobs', 'sha256', configDigest.slice(7)), config)
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length},
        layers: layers.map((l) => ({mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size})),
      }),
    )
    const manifestDigest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`
    await writeFile(join(dir, 'blobs', 'sha256', manifestDigest.slice(7)), manifest)
    manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: manifestDigest,
      size: manifest.length,
      annotations: {'org.opencontainers.image.ref.name': tag},
    })
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests}))
}

/**
 * Write an OCI layout at `dir` holding `tags`. Default shape: every tag shares the
 * three lower layers and has its own top layer, except a tag named `base`, which is
 * the lower layers alone (the republish measurement: an app image on a published
 * base). `four-layers`: every tag is the same four layers; with `distinct`, each tag has
 * its own top layer on them (images of their own: the gateway section).
 */
export async function writeBenchLayout(dir, {scale = 1, tags = ['v1'], shape = 'default', distinct = false} = {}) {
  await mkdir(join(dir, 'blobs', 'sha256'), {recursive: true})
  const config = {Env: ['PATH=/usr/bin:/bin'], Cmd: ['/usr/bin/tool']}
  const generators = shape === 'four-layers' ? [0, 1, 2, 3].map(fourLayer) : [baseLayer(scale), bigLayer(scale), upperLayer(scale)]
  const lower = []
  for (const gen of generators) lower.push(await writeLayer(dir, gen))
  const images = []
  for (const tag of tags) {
    const layers = tag === 'base' || (shape === 'four-layers' && !distinct) ? [...lower] : [...lower, await writeLayer(dir, topLayer(tag))]
    images.push({tag, layers, config})
  }
  await writeImageLayout(dir, images)
  const sum = (key) => lower.reduce((s, l) => s + l[key], 0)
  return {layers: images[0].layers.length, uncompressedBytes: sum('bytes'), files: sum('files'), compressedBytes: images[0].layers.reduce((s, l) => s + l.size, 0)}
}

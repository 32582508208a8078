#!/usr/bin/env node
// npm run bench — builds its own inputs, talks only to loopback, prints medians
// and ratios measured in the same run. Options:
//   --quick           fewer repetitions and smaller scales (a smoke run)
//   --reps N          repetitions of each publish measurement (default 5; quick 2)
//   --startup-reps N  rounds of the start-up measurement, every command once a round
//                     (default 20; quick 5)
//   --scales 1,4,16   image sizes for the scale measurement (default 1,4,16; quick 1,2)
//   --out FILE        also write the results as JSON (default bench/out/results.json)
//   --sections LIST   which of publish,republish,startup,hook,scale,cvmfs,coldstart,gateway
//                     to run (default all)
//   --dir DIR         where images, repositories and unpacked trees go (default $TMPDIR;
//                     /dev/shm takes the disk out of the comparison)
//   --publish-dirs LIST  run the publish and republish sections once in each of these
//                     directories (default: --dir), e.g. /tmp,/dev/shm for disk and tmpfs
//                     in one run
// The real-CernVM-FS sections (root; the kit in ../shared/testbed, or $CVMFS_OCI_BENCH_KIT):
//   cvmfs             cvmfs-oci --repo against DUCC, fresh repository per publish
//   coldstart         a published image from a plain client mount, cache wiped, against
//                     podman pull + run from the loopback registry
//   --cvmfs-images LIST   four-layers,scipy (default both)
//   --cvmfs-reps N        rounds on the four-layers image (default 3; quick 1)
//   --scipy-reps N        rounds on the python/scipy image (default 1)
//   --coldstart-reps N    rounds of the cold start (default 3; quick 1)
//   --cache-dir DIR       where the python/scipy image is kept between runs
//                         (default $XDG_CACHE_HOME/cvmfs-oci-bench or ~/.cache/cvmfs-oci-bench)
//   --debian-mirror URL   the Debian archive debootstrap uses (default http://deb.debian.org/debian)
//   gateway           N images through one publisher of a gateway repository, then split
//                     over several publishers at once (the kit's cvmfs-gateway.sh)
//   --gateway-images N      images (default 6; quick 3), each four layers + its own top layer
//   --gateway-publishers N  publishers at once (default 3)
//   --gateway-reps N        rounds (default 1)
import {execFileSync, spawnSync} from 'node:child_process'
import {cpus, totalmem, release, tmpdir} from 'node:os'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {findKit} from './lib/cvmfs.mjs'
import {findGateway, onePublisherVsSeveral} from './lib/gateway.mjs'
import {defaultCacheDir, SCIPY_WORKLOAD, scipyImage} from './lib/debian-image.mjs'
import {freshNodeEnvironment} from './lib/environment.mjs'
import {writeBenchLayout} from './lib/image.mjs'
import {repeat, repeatInterleaved} from './lib/measure.mjs'
import {coldStart, publishKept, publishVsDucc} from './lib/real-cvmfs.mjs'
import {pushLayoutImage, startRegistry} from './lib/registry.mjs'
import {benchHook} from './lib/hook.mjs'
import {commandStartup, startupCases, startupFixtures} from './lib/startup.mjs'

const TOP = join(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(TOP, 'bin', 'run.js')
const strings = ['reps', 'startup-reps', 'scales', 'out', 'dir', 'publish-dirs', 'sections', 'cvmfs-images', 'cvmfs-reps', 'scipy-reps', 'coldstart-reps', 'cache-dir', 'debian-mirror', 'gateway-images', 'gateway-publishers', 'gateway-reps']
const {values} = parseArgs({options: {quick: {type: 'boolean'}, ...Object.fromEntries(strings.map((s) => [s, {type: 'string'}]))}})
const quick = Boolean(values.quick)
const reps = Number(values.reps ?? (quick ? 2 : 5))
const startupReps = Number(values['startup-reps'] ?? (quick ? 5 : 20))
const scales = (values.scales ?? (quick ? '1,2' : '1,4,16')).split(',').map(Number)
const outFile = values.out ?? join(TOP, 'bench', 'out', 'results.json')
const sections = new Set((values.sections ?? 'publish,republish,startup,hook,scale,cvmfs,coldstart,gateway').split(','))
const cvmfsImages = new Set((values['cvmfs-images'] ?? 'four-layers,scipy').split(','))
for (const image of cvmfsImages) {
  if (!['four-layers', 'scipy'].includes(image)) {
    console.error(`bench: --cvmfs-images: unknown image ${image} (four-layers, scipy)`)
    process.exit(2)
  }
}
const cvmfsReps = Number(values['cvmfs-reps'] ?? (quick ? 1 : 3))
const scipyReps = Number(values['scipy-reps'] ?? 1)
const coldReps = Number(values['coldstart-reps'] ?? (quick ? 1 : 3))
const gatewayImages = Number(values['gateway-images'] ?? (quick ? 3 : 6))
const gatewayPublishers = Number(values['gateway-publishers'] ?? 3)
const gatewayReps = Number(values['gateway-reps'] ?? 1)

for (const tool of ['skopeo', 'umoci', 'docker-registry', 'podman', 'tar', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench: ${tool} is missing; run ./scripts/setup.sh first`)
    process.exit(1)
  }
}

const work = mkdtempSync(join(values.dir ?? tmpdir(), 'cvmfs-oci-bench-'))
/** Where the publish and republish sections run: [{dir, work}] (the main work directory for --dir itself). */
const publishDirs = (values['publish-dirs']?.split(',') ?? [values.dir ?? tmpdir()]).map((dir) => ({
  dir,
  work: dir === (values.dir ?? tmpdir()) ? work : mkdtempSync(join(dir, 'cvmfs-oci-bench-')),
}))
const registry = await startRegistry()
const results = {machine: machine(), when: new Date().toISOString(), dir: values.dir ?? tmpdir(), reps, scales, sections: {}}
const fmt = (s, unit = 's') => `${s.median.toFixed(unit === 'ms' ? 1 : 2)} ${unit} [${s.min.toFixed(unit === 'ms' ? 1 : 2)}–${s.max.toFixed(unit === 'ms' ? 1 : 2)}]`
const log = (line) => console.log(line)

function machine() {
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    skopeo: execFileSync('skopeo', ['--version']).toString().trim(),
    umoci: execFileSync('umoci', ['--version']).toString().trim(),
  }
}

const sync = () => spawnSync('sync')
const fresh = (path) => {
  rmSync(path, {recursive: true, force: true})
  sync()
}

/** Generate, push, and return the registry reference of an image at `scale` (or of another shape). */
async function prepareImage(scale, tags, shape = 'default') {
  const name = shape === 'default' ? `s${scale}` : shape
  const layout = join(work, `layout-${name}`)
  const info = await writeBenchLayout(layout, {scale, tags, shape})
  for (const tag of tags) {
    pushLayoutImage(layout, tag, `${registry.address}/bench/${name}:${tag}`)
  }
  return {layout, info, ref: (tag) => `${registry.address}/bench/${name}:${tag}`}
}

/** The four-layers image, made once for the sections that use it. */
let fourLayers
const fourLayersImage = async () => (fourLayers ??= await prepareImage(1, ['v1'], 'four-layers'))

const publishArgv = (root, ref) => [process.execPath, CLI, 'publish', '-q', '--root', root, '--tls-verify=false', ref]
// Every tool's temporary files (cvmfs-oci's download, skopeo's) go where its output goes.
const inDir = (dir = work) => ({env: {TMPDIR: dir}})

async function publishComparison(image, dir) {
  const ref = image.ref('v1')
  const repo = join(dir, 'repo')
  const oci = join(dir, 'oci')
  const bundle = join(dir, 'bundle')
  const flat = join(dir, 'tarfloor')
  const umocis = ['sh', '-c', `skopeo copy --quiet --src-tls-verify=false docker://${ref} oci:${oci}:v1 && umoci unpack --image ${oci}:v1 ${bundle} >/dev/null`]
  // The floor: the same download, then GNU tar of each layer in order (no whiteouts, no checks).
  // The layers' paths in the copy are known before the clock starts: the blobs are those of
  // the image's own layout (the same digests).
  const layers = layoutLayers(image.layout, 'v1').map((blob) => join(oci, 'blobs', 'sha256', basename(blob)))
  const floorScript = `skopeo copy --quiet --src-tls-verify=false docker://${ref} oci:${oci}:v1 && mkdir -p ${flat} && for l in ${layers.join(' ')}; do tar -xzf $l -C ${flat}; done`
  const [ours, umoci, floor] = await repeatInterleaved(reps, [
    {prepare: () => fresh(repo), argv: publishArgv(repo, ref)},
    {prepare: () => (fresh(oci), fresh(bundle)), argv: umocis},
    {prepare: () => (fresh(oci), fresh(flat)), argv: ['sh', '-c', floorScript]},
  ], inDir(dir))
  fresh(repo)
  fresh(oci)
  fresh(bundle)
  fresh(flat)
  return {ours, umoci, floor, ratioUmoci: ours.wall.median / umoci.wall.median, ratioFloor: ours.wall.median / floor.wall.median}
}

/** The blob paths, in the OCI layout, of the layers of `tag`. */
function layoutLayers(layout, tag) {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'))
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'))
  return manifest.layers.map((layer) => join(layout, 'blobs', 'sha256', layer.digest.slice(7)))
}

async function republish(image, dir) {
  const repo = join(dir, 'repo-re')
  const floorDir = join(dir, 'refloor')
  const publishBase = () => {
    fresh(repo)
    execFileSync(process.execPath, publishArgv(repo, image.ref('base')).slice(1))
    sync()
  }
  // The floor: a hardlink clone of the base's root (cp -al) and GNU tar of the layer above
  // it, read from the image's layout (its 4 MB download over loopback left out).
  const top = layoutLayers(image.layout, 'v2').at(-1)
  const floorScript = `cp -al "$(ls -d ${repo}/.flat/*/* | head -n 1)" ${floorDir} && tar -xzf ${top} -C ${floorDir}`
  const [first, again, floor] = await repeatInterleaved(reps, [
    {prepare: () => fresh(repo), argv: publishArgv(repo, image.ref('v2'))},
    {prepare: publishBase, argv: publishArgv(repo, image.ref('v2'))},
    {prepare: () => (publishBase(), fresh(floorDir)), argv: ['sh', '-c', floorScript]},
  ], inDir(dir))
  fresh(repo)
  fresh(floorDir)
  return {first, onBase: again, floor, ratio: again.wall.median / first.wall.median, ratioFloor: again.wall.median / floor.wall.median}
}

async function startup(repo, ref) {
  const rows = await commandStartup(startupCases({cli: CLI, repo, ref, ...startupFixtures(work, ref)}), {reps: startupReps})
  const row = (name) => rows.find((r) => r.name === name)
  return {node: rows[0].exit, rows, ratioResolve: row('resolve').ratioExit, ratioVersion: row('--version').ratioExit}
}

async function scaling() {
  const rows = []
  for (const scale of scales) {
    const image = scale === 1 && base ? base : await prepareImage(scale, ['v1'])
    const repo = join(work, `repo-scale-${scale}`)
    const run = await repeat(Math.min(reps, scale >= 16 ? 1 : 3), () => fresh(repo), publishArgv(repo, image.ref('v1')), inDir())
    rows.push({scale, uncompressedMB: image.info.uncompressedBytes / 1e6, ...run})
    fresh(repo)
    if (image !== base) fresh(image.layout)
    log(`  scale ${scale}×: ${(image.info.uncompressedBytes / 1e6).toFixed(0)} MB  wall ${fmt(run.wall)}  peak RSS ${run.rssMiB.median.toFixed(0)} MiB`)
  }
  return rows
}

const MB = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`
const phaseLine = (phases, keys) => keys.filter((k) => phases[k]).map((k) => `${k} ${phases[k].median.toFixed(1)}`).join(', ')

/** The images of the real-CVMFS sections, pushed to the registry: [{key, label, ref, info}]. */
async function realImages() {
  const images = []
  if (cvmfsImages.has('four-layers') && sections.has('cvmfs')) {
    const {layout, info} = await fourLayersImage()
    images.push({key: 'four-layers', label: 'four layers', layout, info, tag: 'v1', reps: cvmfsReps})
  }
  if (cvmfsImages.has('scipy')) {
    const {layout, info} = await scipyImage({cacheDir: values['cache-dir'] ?? defaultCacheDir(), mirror: values['debian-mirror'], log})
    images.push({key: 'scipy', label: 'python3 + numpy + scipy (Debian 12)', layout, info, tag: '1', reps: scipyReps})
  }
  for (const image of images) {
    image.ref = `${registry.address}/bench/${image.key}:${image.tag}`
    if (image.key !== 'four-layers') pushLayoutImage(image.layout, image.tag, image.ref)
    log(`  ${image.key}: ${image.info.layers} layer(s), ${image.info.files} files, ${MB(image.info.uncompressedBytes)} uncompressed, ${MB(image.info.compressedBytes)} gzip`)
  }
  return images
}

async function realCvmfs() {
  log('\n== 6./7. real CernVM-FS (the kit\'s stratum-0 and client)')
  let kit
  let images
  try {
    kit = findKit(TOP)
    // An interrupted run still removes its repositories (and the registry, and the work dir).
    for (const signal of ['SIGINT', 'SIGTERM']) {
      process.once(signal, () => {
        log(`\n${signal}: removing the bench's repositories`)
        kit.stopAll()
        registry.stop()
        for (const {work: where} of publishDirs) rmSync(where, {recursive: true, force: true})
        rmSync(work, {recursive: true, force: true})
        process.exit(130)
      })
    }
    images = await realImages()
  } catch (error) {
    log(`  FAILED: ${error.message}`)
    results.sections.cvmfs = {error: error.message}
    process.exitCode = 1
    return
  }
  const coldImage = images.find((i) => i.key === 'scipy')
  let kept
  try {
    if (sections.has('cvmfs')) {
      results.sections.cvmfs = {}
      for (const image of images) {
        const t0 = Date.now()
        log(`\n== 6. publish into a real repository: cvmfs-oci --repo vs cvmfs_ducc convert-single-image, ${image.label} (median [min–max] of ${image.reps}, interleaved, a fresh repository each)`)
        const keepLast = sections.has('coldstart') && image === coldImage
        const layers = layoutLayers(image.layout, image.tag)
        const r = (results.sections.cvmfs[image.key] = await publishVsDucc({kit, ref: image.ref, layers, work, cli: CLI, reps: image.reps, keepLast}))
        if (r.kept) kept = r.kept
        for (const [label, v] of [['cvmfs-oci', r.ours], ['DUCC     ', r.ducc]]) {
          log(`  ${label}   wall ${fmt(v.wall)}  cpu ${fmt(v.cpu)}  peak RSS ${v.ownRssMiB.median.toFixed(0)} MiB (largest process of its tree ${v.rssMiB.median.toFixed(0)} MiB)  revisions ${v.revisions.median} (${callLine(v.calls)})`)
        }
        log(`  floor       wall ${fmt(r.floor.wall)}: tar -xzf of each layer into the union mount ${r.floor.phases.unpack?.median.toFixed(1)} s, cvmfs_server publish ${r.floor.phases.publish?.median.toFixed(1)} s (CPU ${r.floor.phases.publishCpu?.median.toFixed(1)} s); no download, no checks`)
        log(`  ratio cvmfs-oci / DUCC: ${r.ratio.toFixed(2)} (target ≤ 0.3); floor / DUCC: ${r.floorRatio.toFixed(2)}`)
        log(`  cvmfs-oci's time (s, medians): ${phaseLine(r.ours.phases, ['startup', 'checks', 'fetch', 'transaction', 'merge', 'publish', 'exit'])}; of the checks, cvmfs_server list ${r.ours.phases.list?.median.toFixed(1) ?? '?'}; CPU of cvmfs_server publish ${r.ours.phases.publishCpu?.median.toFixed(1) ?? '?'}`)
        log(`  DUCC's time (s, medians): inside cvmfs_server ${phaseLine(r.ducc.phases, ['transaction', 'transaction -T', 'publish', 'ingest', 'list'])}; its own work ${r.ducc.phases.own?.median.toFixed(1)}; CPU of its publishes and ingests ${r.ducc.phases.publishCpu?.median.toFixed(1) ?? '?'}`)
        log(`  (this part of the section took ${((Date.now() - t0) / 1000).toFixed(0)} s, repositories made and removed included)`)
      }
    }
    if (sections.has('coldstart')) {
      if (!coldImage) throw new Error('the cold start runs the python/scipy image: add scipy to --cvmfs-images')
      const t0 = Date.now()
      log(`\n== 7. cold start of ${coldImage.label}: \`${SCIPY_WORKLOAD.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}\` (median [min–max] of ${coldReps})`)
      if (!kept) {
        log('  publishing it with cvmfs-oci first (not timed here)')
        kept = await publishKept({kit, ref: coldImage.ref, work, cli: CLI})
      }
      const c = (results.sections.coldstart = await coldStart({kit, name: kept, ref: coldImage.ref, work, cli: CLI, reps: coldReps, workload: SCIPY_WORKLOAD}))
      const row = (label, v) => log(`  ${label} wall ${fmt(v.wall)}  fetched ${MB(v.fetched.median)}  written ${MB(v.written.median)}`)
      row('client mount, podman run --rootfs $(cvmfs-oci resolve)  ', c.rootfs)
      row('client mount, podman run through its podmanStore          ', c.store)
      row('podman pull + podman run from the loopback registry       ', c.pull)
      log(`  (client mount before each: ${fmt(c.rootfs.mount)}; fetched counts everything since the mount, ${MB(c.rootfs.fetchedDuringRun.median)} of it during the run; ${c.rootfs.requests.median} HTTP requests)`)
      for (const [k, label] of [['rootfs', '--rootfs'], ['store', 'podmanStore']]) {
        const r = c.ratios[k]
        log(`  pull+run / ${label}: time ${r.time.toFixed(1)}×, fetched ${r.fetched.toFixed(1)}×, written ${r.written.toFixed(1)}× (target ≥ 10× on time and bytes)`)
      }
      log(`  (the section took ${((Date.now() - t0) / 1000).toFixed(0)} s)`)
    }
  } catch (error) {
    log(`  FAILED: ${error.message}`)
    results.sections.realCvmfsError = error.message
    process.exitCode = 1
  } finally {
    if (kept) kit.stop(kept)
  }
}

async function gatewaySection() {
  log(`\n== 8. several publishers through a real gateway: ${gatewayImages} images, one publisher vs ${gatewayPublishers} at once (median [min–max] of ${gatewayReps}, a fresh gateway repository each)`)
  let gateway
  try {
    gateway = findGateway(findKit(TOP).script)
    for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => (gateway.stopAll(), process.exit(130)))
    const layout = join(work, 'layout-gateway')
    const tags = Array.from({length: gatewayImages}, (_, i) => `g${i + 1}`)
    const info = await writeBenchLayout(layout, {shape: 'four-layers', tags, distinct: true})
    const refs = tags.map((tag) => `${registry.address}/bench/gateway:${tag}`)
    for (const [i, tag] of tags.entries()) pushLayoutImage(layout, tag, refs[i])
    log(`  each image: ${info.layers} layer(s) + its own top layer (8 MB), ${info.files} files, ${MB(info.uncompressedBytes)} uncompressed below the top layer`)
    const t0 = Date.now()
    const g = (results.sections.gateway = await onePublisherVsSeveral({gateway, refs, publishers: gatewayPublishers, work, cli: CLI, reps: gatewayReps}))
    for (const [label, v] of [['1 publisher ', g.one], [`${gatewayPublishers} publishers`, g.several]]) {
      log(`  ${label}  wall ${fmt(v.wall)}  cpu (all publishers) ${fmt(v.cpu)} = ${(v.cpu.median / v.wall.median).toFixed(2)} cores busy  gateway commits ${fmt(v.commits)}  revisions ${v.revisions.median}  busy leases waited for ${v.waits.median}  publishes refused for another publisher's open files ${v.writerWaits.median}`)
    }
    log(`  speed-up: ${g.speedup.toFixed(2)}× with ${gatewayPublishers} publishers on ${cpus().length} cores (target ≥ 2×)`)
    log(`  (the section took ${((Date.now() - t0) / 1000).toFixed(0)} s, repositories made and removed included)`)
  } catch (error) {
    log(`  FAILED: ${error.message}`)
    results.sections.gateway = {error: error.message}
    process.exitCode = 1
  }
}

const callLine = (calls) => Object.entries(calls).map(([verb, s]) => `${s.median} ${verb}`).join(', ')

let base
try {
  log(`machine: ${JSON.stringify(results.machine)}`)
  // Every command is measured as on a fresh machine (lib/environment.mjs says why).
  const environment = (results.environment = freshNodeEnvironment())
  if (environment) {
    log(`environment: ${environment.removed.join(' and ')} removed for every measured command: node -e 0 takes ${environment.withMs.toFixed(1)} ms with, ${environment.withoutMs.toFixed(1)} ms without (medians of ${environment.rounds})`)
  }
  if (['publish', 'republish', 'startup', 'hook', 'scale'].some((s) => sections.has(s))) {
  log('\n== preparing the scale-1 image')
  base = await prepareImage(1, ['v1', 'v2', 'base'])
  log(`  ${base.info.layers} layers, ${(base.info.uncompressedBytes / 1e6).toFixed(0)} MB uncompressed`)
  }

  for (const {dir, work: where} of publishDirs) {
  if (sections.has('publish')) {
  results.sections.publish ??= {}
  results.sections.publish[dir] = {}
  for (const [key, label, image] of [['default', 'the default image', base], ['four-layers', 'the four-layers image', await fourLayersImage()]]) {
  log(`\n== 1. publish ${label}, in ${dir}: ${image.info.layers} layers, ${image.info.files} files, ${MB(image.info.uncompressedBytes)} uncompressed, ${MB(image.info.compressedBytes)} gzip (median [min–max] of ${reps}, interleaved)`)
  const p = (results.sections.publish[dir][key] = await publishComparison(image, where))
  log(`  cvmfs-oci publish        wall ${fmt(p.ours.wall)}  cpu ${fmt(p.ours.cpu)}  peak RSS ${p.ours.rssMiB.median.toFixed(0)} MiB`)
  log(`  skopeo copy + umoci      wall ${fmt(p.umoci.wall)}  cpu ${fmt(p.umoci.cpu)}  peak RSS ${p.umoci.rssMiB.median.toFixed(0)} MiB`)
  log(`  skopeo copy + tar (floor) wall ${fmt(p.floor.wall)}  cpu ${fmt(p.floor.cpu)}  peak RSS ${p.floor.rssMiB.median.toFixed(0)} MiB`)
  log(`  ratio to skopeo+umoci: ${p.ratioUmoci.toFixed(2)} (target ≤ 0.8)   ratio to floor: ${p.ratioFloor.toFixed(2)} (target ≤ 1.3)`)
  }
  }

  if (sections.has('republish')) {
  log(`\n== 2. republish, in ${dir}: an app image on a base published under another tag`)
  results.sections.republish ??= {}
  const r = (results.sections.republish[dir] = await republish(base, where))
  log(`  into an empty repository  ${fmt(r.first.wall)}`)
  log(`  on the published base     ${fmt(r.onBase.wall)}   ratio ${r.ratio.toFixed(2)} (target ≤ 0.3)`)
  log(`  floor: cp -al of the base root + tar -xzf of the layer above it  ${fmt(r.floor.wall)}   republish / floor ${r.ratioFloor.toFixed(2)}`)
  }
  }

  if (sections.has('startup') || sections.has('hook')) {
  log(`\n== 3. start-up (ms, median [min–max] of ${startupReps} rounds, every command once a round; ratio: median / node -e 0's)`)
  const repo = join(work, 'repo-startup')
  execFileSync(process.execPath, publishArgv(repo, base.ref('base')).slice(1))
  // The image just published (and, in a full run, section 1's publishes on the disk) would
  // otherwise be written back to the disk during the rounds: the kernel's flusher on one of
  // the two cores, in some rounds and not others.
  sync()
  const s = (results.sections.startup = await startup(repo, base.ref('base')))
  log(`  ${'command'.padEnd(30)}${'path'.padEnd(8)}${'first output (ratio; paired)'.padEnd(42)}${'exit (ratio; paired)'.padEnd(42)}target`)
  for (const r of s.rows) {
    const first = r.first ? `${fmt(r.first, 'ms')}  ${r.ratioFirst.toFixed(2)}×; ${r.pairedFirst.toFixed(2)}×` : ''
    const verdict = r.met ? 'met' : r.metPaired ? 'met paired only' : 'NOT met'
    const target = r.target === undefined ? '' : `≤ ${r.target} (${r.firstLine ? 'first output' : 'exit'}): ${verdict}`
    log(`  ${r.name.padEnd(30)}${r.via.padEnd(8)}${first.padEnd(42)}${`${fmt(r.exit, 'ms')}  ${r.ratioExit.toFixed(2)}×; ${r.pairedExit.toFixed(2)}×`.padEnd(42)}${target}`)
  }
  log('  (path: router = dist/cli/fast-paths.cjs, bundle = the command\'s own (resolve\'s: dist/cli/resolve-main.cjs), oclif = oclif loaded; publish prints its first line as it asks for the manifest, while the repository lock is taken; sync --dry-run once it has read the wish list; rm with nothing to remove takes no lock)')

  if (sections.has('hook')) {
  log('\n== 4. the hook (ms)')
  const h = (results.sections.hook = await benchHook({work, cli: CLI, registry: registry.address, node: s.node, reps: quick ? 6 : 15}))
  log(`  hook program alone   ${fmt(h.program, 'ms')}   ratio to node -e 0: ${(h.program.median / s.node.median).toFixed(2)}`)
  log(`  podman run --rootfs, without hook ${fmt(h.paired.b, 'ms')}, with ${fmt(h.paired.a, 'ms')}`)
  log(`  added by the hook: ${h.paired.diff.median.toFixed(1)} ms = ${(h.paired.diff.median / s.node.median).toFixed(2)} × node -e 0 (target ≤ 1.2)`)
  }
  }

  if (sections.has('scale')) {
  log('\n== 5. scale')
  results.sections.scale = await scaling()
  }

  if (sections.has('cvmfs') || sections.has('coldstart')) await realCvmfs()
  if (sections.has('gateway')) await gatewaySection()
} finally {
  registry.stop()
  for (const {work: where} of publishDirs) rmSync(where, {recursive: true, force: true})
  rmSync(work, {recursive: true, force: true})
  mkdirSync(dirname(outFile), {recursive: true})
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
  log(`\nresults: ${outFile}`)
}

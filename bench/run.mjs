#!/usr/bin/env node
// npm run bench — builds its own inputs, talks only to loopback, prints medians
// and ratios measured in the same run. Options:
//   --quick           fewer repetitions and smaller scales (a smoke run)
//   --reps N          repetitions of each publish measurement (default 5; quick 2)
//   --scales 1,4,16   image sizes for the scale measurement (default 1,4,16; quick 1,2)
//   --out FILE        also write the results as JSON (default bench/out/results.json)
//   --sections LIST   which of publish,republish,startup,hook,scale to run (default all)
//   --dir DIR         where images, repositories and unpacked trees go (default $TMPDIR;
//                     /dev/shm takes the disk out of the comparison)
import {execFileSync, spawnSync} from 'node:child_process'
import {cpus, totalmem, release, tmpdir} from 'node:os'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {writeBenchLayout} from './lib/image.mjs'
import {repeat, repeatInterleaved, startupTimes} from './lib/measure.mjs'
import {startRegistry} from './lib/registry.mjs'
import {benchHook} from './lib/hook.mjs'

const TOP = join(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(TOP, 'bin', 'run.js')
const {values} = parseArgs({options: {quick: {type: 'boolean'}, reps: {type: 'string'}, scales: {type: 'string'}, out: {type: 'string'}, dir: {type: 'string'}, sections: {type: 'string'}}})
const quick = Boolean(values.quick)
const reps = Number(values.reps ?? (quick ? 2 : 5))
const scales = (values.scales ?? (quick ? '1,2' : '1,4,16')).split(',').map(Number)
const outFile = values.out ?? join(TOP, 'bench', 'out', 'results.json')
const sections = new Set((values.sections ?? 'publish,republish,startup,hook,scale').split(','))

for (const tool of ['skopeo', 'umoci', 'docker-registry', 'podman', 'tar', '/usr/bin/time']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench: ${tool} is missing; run ./scripts/setup.sh first`)
    process.exit(1)
  }
}

const work = mkdtempSync(join(values.dir ?? tmpdir(), 'cvmfs-oci-bench-'))
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

/** Generate, push, and return the registry reference of an image at `scale`. */
async function prepareImage(scale, tags) {
  const layout = join(work, `layout-${scale}`)
  const info = await writeBenchLayout(layout, {scale, tags})
  for (const tag of tags) {
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${registry.address}/bench/s${scale}:${tag}`])
  }
  return {layout, info, ref: (tag) => `${registry.address}/bench/s${scale}:${tag}`}
}

const publishArgv = (root, ref) => [process.execPath, CLI, 'publish', '-q', '--root', root, '--tls-verify=false', ref]

async function publishComparison(image) {
  const ref = image.ref('v1')
  const repo = join(work, 'repo')
  const oci = join(work, 'oci')
  const bundle = join(work, 'bundle')
  const flat = join(work, 'tarfloor')
  const umocis = ['sh', '-c', `skopeo copy --quiet --src-tls-verify=false docker://${ref} oci:${oci}:v1 && umoci unpack --image ${oci}:v1 ${bundle} >/dev/null`]
  // The floor: the same download, then GNU tar of each layer in order (no whiteouts, no checks).
  const floorScript = `skopeo copy --quiet --src-tls-verify=false docker://${ref} oci:${oci}:v1 && mkdir -p ${flat} && for l in $(node -e '
    const fs=require("fs"),o=process.argv[1];const i=JSON.parse(fs.readFileSync(o+"/index.json"));
    const m=JSON.parse(fs.readFileSync(o+"/blobs/sha256/"+i.manifests[0].digest.slice(7)));
    console.log(m.layers.map(l=>o+"/blobs/sha256/"+l.digest.slice(7)).join(" "))' ${oci}); do tar -xzf $l -C ${flat}; done`
  const [ours, umoci, floor] = await repeatInterleaved(reps, [
    {prepare: () => fresh(repo), argv: publishArgv(repo, ref)},
    {prepare: () => (fresh(oci), fresh(bundle)), argv: umocis},
    {prepare: () => (fresh(oci), fresh(flat)), argv: ['sh', '-c', floorScript]},
  ])
  fresh(repo)
  fresh(oci)
  fresh(bundle)
  fresh(flat)
  return {ours, umoci, floor, ratioUmoci: ours.wall.median / umoci.wall.median, ratioFloor: ours.wall.median / floor.wall.median}
}

async function republish(image) {
  const repo = join(work, 'repo-re')
  const [first, again] = await repeatInterleaved(reps, [
    {prepare: () => fresh(repo), argv: publishArgv(repo, image.ref('v2'))},
    {
      prepare: () => {
        fresh(repo)
        execFileSync(process.execPath, publishArgv(repo, image.ref('base')).slice(1))
        sync()
      },
      argv: publishArgv(repo, image.ref('v2')),
    },
  ])
  fresh(repo)
  return {first, onBase: again, ratio: again.wall.median / first.wall.median}
}

function startup(repo, ref) {
  const node = startupTimes([process.execPath, '-e', '0'])
  const resolve = startupTimes([process.execPath, CLI, 'resolve', '--root', repo, ref])
  const version = startupTimes([process.execPath, CLI, '--version'])
  return {node, resolve, version, ratioResolve: resolve.median / node.median, ratioVersion: version.median / node.median}
}

async function scaling() {
  const rows = []
  for (const scale of scales) {
    const image = scale === 1 && base ? base : await prepareImage(scale, ['v1'])
    const repo = join(work, `repo-scale-${scale}`)
    const run = await repeat(Math.min(reps, scale >= 16 ? 1 : 3), () => fresh(repo), publishArgv(repo, image.ref('v1')))
    rows.push({scale, uncompressedMB: image.info.uncompressedBytes / 1e6, ...run})
    fresh(repo)
    if (image !== base) fresh(image.layout)
    log(`  scale ${scale}×: ${(image.info.uncompressedBytes / 1e6).toFixed(0)} MB  wall ${fmt(run.wall)}  peak RSS ${run.rssMiB.median.toFixed(0)} MiB`)
  }
  return rows
}

let base
try {
  log(`machine: ${JSON.stringify(results.machine)}`)
  log('\n== preparing the scale-1 image')
  base = await prepareImage(1, ['v1', 'v2', 'base'])
  log(`  ${base.info.layers} layers, ${(base.info.uncompressedBytes / 1e6).toFixed(0)} MB uncompressed`)

  if (sections.has('publish')) {
  log(`\n== 1. publish (median [min–max] of ${reps}, interleaved)`)
  const p = (results.sections.publish = await publishComparison(base))
  log(`  cvmfs-oci publish        wall ${fmt(p.ours.wall)}  cpu ${fmt(p.ours.cpu)}  peak RSS ${p.ours.rssMiB.median.toFixed(0)} MiB`)
  log(`  skopeo copy + umoci      wall ${fmt(p.umoci.wall)}  cpu ${fmt(p.umoci.cpu)}  peak RSS ${p.umoci.rssMiB.median.toFixed(0)} MiB`)
  log(`  skopeo copy + tar (floor) wall ${fmt(p.floor.wall)}  cpu ${fmt(p.floor.cpu)}  peak RSS ${p.floor.rssMiB.median.toFixed(0)} MiB`)
  log(`  ratio to skopeo+umoci: ${p.ratioUmoci.toFixed(2)} (target ≤ 0.8)   ratio to floor: ${p.ratioFloor.toFixed(2)} (target ≤ 1.3)`)
  }

  if (sections.has('republish')) {
  log('\n== 2. republish: an app image on a base published under another tag')
  const r = (results.sections.republish = await republish(base))
  log(`  into an empty repository  ${fmt(r.first.wall)}`)
  log(`  on the published base     ${fmt(r.onBase.wall)}   ratio ${r.ratio.toFixed(2)} (target ≤ 0.3)`)
  }

  if (sections.has('startup') || sections.has('hook')) {
  log('\n== 3. start-up (ms, median [min–max] of 30)')
  const repo = join(work, 'repo-startup')
  execFileSync(process.execPath, publishArgv(repo, base.ref('base')).slice(1))
  const s = (results.sections.startup = startup(repo, base.ref('base')))
  log(`  node -e 0            ${fmt(s.node, 'ms')}`)
  log(`  cvmfs-oci resolve    ${fmt(s.resolve, 'ms')}   ratio ${s.ratioResolve.toFixed(2)} (target ≤ 1.2)`)
  log(`  cvmfs-oci --version  ${fmt(s.version, 'ms')}   ratio ${s.ratioVersion.toFixed(2)} (target ≤ 2)`)

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
} finally {
  registry.stop()
  rmSync(work, {recursive: true, force: true})
  mkdirSync(dirname(outFile), {recursive: true})
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`)
  log(`\nresults: ${outFile}`)
}

// The sections on a real CernVM-FS (the kit's stratum-0 and plain client):
//  - publish: cvmfs-oci --repo against DUCC (cvmfs_ducc convert-single-image) on the
//    same image, each into a fresh repository (every publish is a first publish),
//    interleaved: wall time, how many revisions each adds (every `cvmfs_server
//    publish`, ingest and `transaction -T` signs one), and where the time goes;
//  - cold start: an image run from a plain client mount with its cache wiped, against
//    `podman pull` + `podman run` from the loopback registry.
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {clientCounters, readCalls, WRAP_DIR} from './cvmfs.mjs'
import {summary, timed} from './measure.mjs'
import {podmanArgv, podmanEnv} from './podman.mjs'

const seconds = (ms) => ms / 1000
/** One argument quoted for sh. */
const sq = (arg) => `'${String(arg).replaceAll("'", `'\\''`)}'`
const shell = (argv) => argv.map(sq).join(' ')

/** `du -sb`: apparent bytes below `path` (0 when it does not exist). */
function duBytes(path) {
  const r = spawnSync('du', ['-sb', path])
  return r.status === 0 ? Number(String(r.stdout).split('\t')[0]) : 0
}

/**
 * Where cvmfs-oci's time went, from its `--debug --timestamps` lines and the logging
 * cvmfs_server: start-up (to its first line), checks (opening the repository: lock,
 * `cvmfs_server list`), fetch (manifest, download and verification, before any
 * transaction), transaction (opening it), merge (layers into the union mount, metadata,
 * podman store), publish (`cvmfs_server publish`), exit.
 */
function oursPhases(run, calls) {
  const lines = run.stderr.split('\n').map((l) => /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (.*)$/.exec(l)).filter(Boolean)
  const at = (test) => {
    const line = lines.find(([, , text]) => test(text))
    return line ? Date.parse(line[1]) : undefined
  }
  const txn = calls.find((c) => c.verb === 'transaction')
  const pub = calls.find((c) => c.verb === 'publish')
  const first = lines.length > 0 ? Date.parse(lines[0][1]) : undefined
  const fetch = at((t) => t.endsWith('fetching manifest') || / fetching manifest \(/.test(t))
  if (!txn || !pub || first === undefined || fetch === undefined) return undefined
  return {
    startup: seconds(first - run.started),
    checks: seconds(fetch - first),
    fetch: txn.start - seconds(fetch),
    transaction: txn.end - txn.start,
    merge: pub.start - txn.end,
    publish: pub.end - pub.start,
    // CPU time of that publish (cvmfs_server and what it waited for): on a 2-core machine,
    // how much of its wall time it kept both cores busy.
    publishCpu: pub.cpu,
    exit: seconds(run.ended) - pub.end,
    list: calls.filter((c) => c.verb === 'list').reduce((s, c) => s + c.end - c.start, 0),
  }
}

/** DUCC's time: inside cvmfs_server, by verb, and its own work (download, unpack, writes) around them. */
function duccPhases(run, calls) {
  const by = {}
  let cpu = 0
  for (const c of calls) {
    const verb = c.verb === 'transaction' && c.args.includes('-T') ? 'transaction -T' : c.verb
    by[verb] = (by[verb] ?? 0) + c.end - c.start
    if (c.verb === 'publish' || c.verb === 'ingest') cpu += c.cpu
  }
  const inServer = Object.values(by).reduce((s, v) => s + v, 0)
  return {...by, own: run.wall - inServer, publishCpu: cpu}
}

function countCalls(calls) {
  const counts = {}
  for (const c of calls) {
    const verb = c.verb === 'transaction' && c.args.includes('-T') ? 'transaction -T' : c.verb
    counts[verb] = (counts[verb] ?? 0) + 1
  }
  return counts
}

/**
 * The floor's time: GNU tar of the layers into the union mount (no whiteouts, no checks,
 * no download), then the one `cvmfs_server publish` — what any tool that writes the image
 * through a transaction pays at least.
 */
function floorPhases(run, calls) {
  const txn = calls.find((c) => c.verb === 'transaction')
  const pub = calls.find((c) => c.verb === 'publish')
  if (!txn || !pub) return undefined
  return {transaction: txn.end - txn.start, unpack: pub.start - txn.end, publish: pub.end - pub.start, publishCpu: pub.cpu}
}

/**
 * One publish of `ref` by `tool` ('cvmfs-oci', 'ducc', or 'floor': `layers`, the image's
 * layer blobs, untarred into a transaction) into a fresh repository.
 * `keep` leaves the repository in place (the caller stops it).
 */
async function publishOnce({kit, tool, ref, layers, work, cli, keep}) {
  const name = kit.start()
  const dir = join(work, name)
  mkdirSync(dir, {recursive: true})
  const callLog = join(dir, 'cvmfs_server.calls')
  const env = {PATH: `${WRAP_DIR}:${process.env.PATH}`, BENCH_CVMFS_SERVER_LOG: callLog}
  let argv
  if (tool === 'cvmfs-oci') {
    const config = join(dir, 'config.json')
    writeFileSync(config, JSON.stringify({stateDir: join(dir, 'state')}))
    argv = [process.execPath, cli, 'publish', '--debug', '--timestamps', '--repo', name, '--config', config, '--tls-verify=false', '--tmpdir', dir, ref]
  } else if (tool === 'ducc') {
    mkdirSync(join(dir, 'tmp'))
    argv = ['cvmfs_ducc', '-t', join(dir, 'tmp'), 'convert-single-image', `http://${ref}`, name]
  } else {
    const into = `/cvmfs/${name}/floor`
    const untar = layers.map((layer) => `tar -xzf '${layer}' -C ${into}`).join(' && ')
    argv = ['sh', '-c', `cvmfs_server transaction ${name} >/dev/null && mkdir ${into} && ${untar} && cvmfs_server publish ${name} >/dev/null`]
  }
  let ok = false
  try {
    const before = kit.revision(name)
    const run = await timed(argv, {env, keepStderr: true, ownRss: true})
    const calls = readCalls(callLog)
    const failed = calls.filter((c) => c.rc !== 0 && c.verb !== 'list')
    if (failed.length > 0) throw new Error(`${tool}: cvmfs_server ${failed[0].args.join(' ')} exited ${failed[0].rc}`)
    ok = true
    return {
      name,
      wall: run.wall,
      cpu: run.cpu,
      rssMiB: run.rssMiB,
      ownRssMiB: run.ownRssMiB,
      revisions: kit.revision(name) - before,
      calls: countCalls(calls),
      phases: tool === 'cvmfs-oci' ? oursPhases(run, calls) : tool === 'ducc' ? duccPhases(run, calls) : floorPhases(run, calls),
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
    if (!keep || !ok) kit.stop(name)
  }
}

/** Publish `ref` with cvmfs-oci into a fresh repository and leave it there: its name. */
export async function publishKept({kit, ref, work, cli}) {
  return (await publishOnce({kit, tool: 'cvmfs-oci', ref, work, cli, keep: true})).name
}

/** A summary (median, min, max) of every numeric key of `objects` (a missing key counts 0). */
function summaries(objects) {
  const present = objects.filter(Boolean)
  const keys = [...new Set(present.flatMap((o) => Object.keys(o)))]
  return Object.fromEntries(keys.map((k) => [k, summary(present.map((o) => o[k] ?? 0))]))
}

/**
 * cvmfs-oci against DUCC on one image, `reps` rounds (cvmfs-oci, DUCC, the floor,
 * cvmfs-oci, …); the floor untars `layers` (the image's layer blobs) into a transaction.
 * With `keepLast`, the last cvmfs-oci repository stays (its name in `kept`).
 */
export async function publishVsDucc({kit, ref, layers, work, cli, reps, keepLast}) {
  const runs = {'cvmfs-oci': [], ducc: [], floor: []}
  let kept
  for (let i = 0; i < reps; i++) {
    for (const tool of ['cvmfs-oci', 'ducc', 'floor']) {
      const keep = keepLast && tool === 'cvmfs-oci' && i === reps - 1
      const run = await publishOnce({kit, tool, ref, layers, work, cli, keep})
      if (keep) kept = run.name
      runs[tool].push(run)
    }
  }
  const sum = (list) => ({
    ...summaries(list.map(({wall, cpu, rssMiB, ownRssMiB, revisions}) => ({wall, cpu, rssMiB, ownRssMiB, revisions}))),
    calls: summaries(list.map((r) => r.calls)),
    phases: summaries(list.map((r) => r.phases)),
    runs: list.map(({name, ...r}) => r),
  })
  const ours = sum(runs['cvmfs-oci'])
  const ducc = sum(runs.ducc)
  const floor = sum(runs.floor)
  return {ours, ducc, floor, ratio: ours.wall.median / ducc.wall.median, floorRatio: floor.wall.median / ducc.wall.median, kept}
}

/**
 * Cold start of `ref`, published in repository `name`: `podman run --rootfs` of the
 * path `cvmfs-oci resolve` gives, and `podman run` through the repository's podman
 * store, each from a plain client mount with its cache wiped (the mount is made before
 * the clock starts), against `podman pull` + `podman run` from the registry into an
 * empty store. Bytes fetched: the client's download counter since the mount / the
 * image's compressed blobs; bytes written: the client cache plus podman's store.
 */
export async function coldStart({kit, name, ref, work, cli, reps, workload}) {
  const dir = join(work, 'coldstart')
  const mnt = join(dir, 'mnt')
  const env = podmanEnv(dir)
  const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).toString())
  const pulled = manifest.layers.reduce((s, l) => s + l.size, 0) + manifest.config.size
  const cache = join(process.env.CVMFS_KIT_STATE_DIR || '/var/lib/cvmfs-kit', 'repos', name, 'client', 'cache')
  const store = (i) => join(dir, `podman-${i}`)
  const resolve = shell([process.execPath, cli, 'resolve', '--root', mnt, ref])
  const variants = {
    rootfs: {cvmfs: true, argv: (p) => ['sh', '-c', `root=$(${resolve}) && exec ${shell(podmanArgv(p, 'run', '--rm', '--rootfs'))} "$root" ${shell(workload)}`]},
    store: {cvmfs: true, argv: (p) => podmanArgv(p, '--storage-opt', `additionalimagestore=${join(mnt, 'podmanStore')}`, 'run', '--rm', ref, ...workload)},
    pull: {cvmfs: false, argv: (p) => ['sh', '-c', `${shell(podmanArgv(p, 'pull', '-q', '--tls-verify=false', ref))} >/dev/null && exec ${shell(podmanArgv(p, 'run', '--rm', ref, ...workload))}`]},
  }
  const runs = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  let n = 0
  try {
    for (let i = 0; i < reps; i++) {
      for (const [key, variant] of Object.entries(variants)) {
        const p = store(n++)
        rmSync(p, {recursive: true, force: true})
        let socket
        let mount = 0
        if (variant.cvmfs) {
          const t0 = Date.now()
          socket = kit.coldClient(name, mnt)
          mount = seconds(Date.now() - t0)
        }
        const before = socket ? clientCounters(socket) : {}
        const run = await timed(variant.argv(p), {env})
        const after = socket ? clientCounters(socket) : {}
        const downloaded = socket ? after['download.sz_transferred_bytes'] : pulled
        runs[key].push({
          wall: run.wall,
          mount,
          fetched: downloaded,
          fetchedDuringRun: socket ? downloaded - before['download.sz_transferred_bytes'] : pulled,
          requests: socket ? after['download.n_requests'] : manifest.layers.length + 2,
          written: duBytes(p) + (socket ? duBytes(cache) : 0),
        })
        rmSync(p, {recursive: true, force: true})
      }
    }
  } finally {
    if (spawnSync('mountpoint', ['-q', mnt]).status === 0) spawnSync('umount', [mnt])
  }
  const result = Object.fromEntries(Object.entries(runs).map(([k, list]) => [k, summaries(list)]))
  const ratio = (key, what) => result.pull[what].median / result[key][what].median
  result.ratios = Object.fromEntries(
    ['rootfs', 'store'].map((k) => [k, {time: ratio(k, 'wall'), fetched: ratio(k, 'fetched'), written: ratio(k, 'written')}]),
  )
  return result
}

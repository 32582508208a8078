// Several publishers through a real CernVM-FS repository gateway (the kit's
// cvmfs-gateway.sh: cvmfs_gateway + cvmfs_receiver, publishers in their own mount
// namespaces, one machine standing in for several): the same images published by one
// publisher, then split over several publishers running at once, each into a fresh
// gateway repository. Wall time and speed-up, CPU time (what the machine's cores bound),
// and the time the gateway spent in commits (what the gateway serialises).
import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {WRAP_DIR, readCalls} from './cvmfs.mjs'
import {summary, timed} from './measure.mjs'
import {freePort} from './registry.mjs'

const STATE_DIR = process.env.CVMFS_KIT_STATE_DIR || '/var/lib/cvmfs-kit'
/** The tests' kit lock: the kit's start/stop never race a test's (`--close`: daemons do not inherit it). */
const KIT_LOCK = join(process.env.TMPDIR || '/tmp', 'cvmfs-oci-tests-kit.lock')

/** The kit's gateway script next to `stratum0Script`; throws when the gateway is not installed. */
export function findGateway(stratum0Script) {
  const script = join(stratum0Script, '..', 'cvmfs-gateway.sh')
  if (!existsSync(script)) throw new Error(`the kit has no ${script}: update it`)
  if (!existsSync('/usr/bin/cvmfs_gateway') || !existsSync('/usr/bin/cvmfs_receiver')) {
    throw new Error(`cvmfs_gateway/cvmfs_receiver missing: install the kit's gateway (${join(stratum0Script, '..', 'install.sh')} gateway)`)
  }
  return new Gateway(script, stratum0Script)
}

export class Gateway {
  constructor(script, stratum0Script) {
    this.script = script
    this.stratum0 = stratum0Script
    this.live = new Set()
  }

  /**
   * A new gateway repository `bench-gw-<random>.test` with publishers `ids` (not timed).
   * cvmfs_server mkfs of the gateway side wants a running Apache (although nothing is
   * served by it): when none runs, a throw-away stratum-0 of the kit starts it meanwhile.
   */
  async start(ids) {
    const name = `bench-gw-${randomBytes(4).toString('hex')}.test`
    const apache = `${name.replace(/\.test$/, '')}-apache.test`
    const script = [
      `if ! ${this.stratum0} status 2>/dev/null | grep -q '^apache: running'; then ${this.stratum0} start ${apache} >/dev/null || exit 1; fi`,
      `${this.script} start ${name} >/dev/null; rc=$?`,
      `if [ -d /etc/cvmfs/repositories.d/${apache} ]; then ${this.stratum0} stop ${apache} || rc=1; fi`,
      'exit $rc',
    ].join('\n')
    this.live.add(name)
    const env = {...process.env, CVMFS_KIT_GATEWAY_PORT: String(await freePort()), CVMFS_KIT_GW_HTTP_PORT: String(await freePort())}
    const r = spawnSync('flock', ['--close', KIT_LOCK, 'bash', '-c', script], {env, stdio: ['ignore', 'pipe', 'pipe']})
    if (r.status !== 0) throw new Error(`${this.script} start ${name} exited ${r.status}:\n${String(r.stderr).slice(-3000)}`)
    for (const id of ids) execFileSync(this.script, ['publisher', name, id], {stdio: ['ignore', 'ignore', 'pipe']})
    return name
  }

  stop(name) {
    spawnSync('flock', ['--close', KIT_LOCK, this.script, 'stop', name], {stdio: 'ignore'})
    this.live.delete(name)
  }

  stopAll() {
    for (const name of this.live) this.stop(name)
  }

  /** argv running `argv` as publisher `id` of `name` (inside its mount namespace), with `path` as PATH. */
  argv(name, id, path, argv) {
    return [this.script, 'run', name, id, '--', 'env', `PATH=${path}`, ...argv]
  }

  /** The revision the gateway's stratum-0 serves (its storage on this machine). */
  published(name) {
    const text = readFileSync(`/srv/cvmfs/${name}/.cvmfspublished`, 'latin1')
    return Number(/^S(\d+)$/m.exec(text.split('\n--\n')[0])?.[1] ?? NaN)
  }

  /** Seconds the gateway spent in commit_lease (its receiver merging catalogs), from its log. */
  commitSeconds(name) {
    const log = join(STATE_DIR, 'gateway', name, 'logs', 'gateway.log')
    if (!existsSync(log)) return undefined
    let ms = 0
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (!line.includes('"action":"commit_lease"')) continue
      const dt = /"action_dt":([\d.]+)/.exec(line)
      if (dt) ms += Number(dt[1])
    }
    return ms / 1000
  }
}

/**
 * Publish `refs` through one publisher, then the same refs split round-robin over
 * `publishers` publishers running at once, each into a fresh gateway repository,
 * `reps` rounds. Every publish must succeed and each image be published exactly once.
 */
export async function onePublisherVsSeveral({gateway, refs, publishers, work, cli, reps}) {
  const ids = ['a', 'b', 'c', 'd', 'e', 'f'].slice(0, publishers)
  const rounds = {one: [], several: []}
  for (let i = 0; i < reps; i++) {
    for (const mode of ['one', 'several']) {
      const name = await gateway.start(mode === 'one' ? ['a'] : ids)
      try {
        const shares = mode === 'one' ? [refs] : ids.map((_, k) => refs.filter((_, j) => j % ids.length === k))
        rounds[mode].push(await publishShares({gateway, name, ids, shares, work, cli}))
      } finally {
        gateway.stop(name)
      }
    }
  }
  const sum = (runs) => ({
    wall: summary(runs.map((r) => r.wall)),
    cpu: summary(runs.map((r) => r.cpu)),
    commits: summary(runs.map((r) => r.commits ?? 0)),
    revisions: summary(runs.map((r) => r.revisions)),
    calls: summary(runs.map((r) => r.transactions)),
    waits: summary(runs.map((r) => r.waits)),
    writerWaits: summary(runs.map((r) => r.writerWaits)),
    runs,
  })
  const one = sum(rounds.one)
  const several = sum(rounds.several)
  return {images: refs.length, publishers, one, several, speedup: one.wall.median / several.wall.median}
}

/** One round: publisher k publishes `shares[k]`, all at once; wall time from the first start to the last end. */
async function publishShares({gateway, name, ids, shares, work, cli}) {
  const dir = join(work, name)
  mkdirSync(dir, {recursive: true})
  const before = gateway.published(name)
  const started = Date.now()
  const runs = await Promise.all(
    shares.map((share, k) => {
      const id = ids[k]
      const callLog = join(dir, `calls-${id}`)
      const config = join(dir, `config-${id}.json`)
      // Each publisher is a machine of its own: its own state (the lock is per machine).
      writeFileSync(config, JSON.stringify({stateDir: join(dir, `state-${id}`)}))
      const argv = gateway.argv(name, id, `${WRAP_DIR}:${process.env.PATH}`, [process.execPath, cli, 'publish', '--timestamps', '--repo', name, '--config', config, '--tls-verify=false', '--tmpdir', dir, ...share])
      return timed(argv, {env: {BENCH_CVMFS_SERVER_LOG: callLog}, keepStderr: true}).then((run) => ({...run, calls: readCalls(callLog)}))
    }),
  )
  const wall = (Math.max(...runs.map((r) => r.ended)) - started) / 1000
  for (const run of runs) {
    // A refused transaction (busy lease) is waited for; so is a publish refused while another
    // publisher of this machine writes below /cvmfs/NAME (exit 1, asked again by cvmfs-oci).
    // Whether every image got published is checked below.
    const failed = run.calls.filter((c) => c.rc !== 0 && !['list', 'transaction'].includes(c.verb) && !(c.verb === 'publish' && c.rc === 1))
    if (failed.length > 0) throw new Error(`cvmfs_server ${failed[0].args.join(' ')} exited ${failed[0].rc}`)
  }
  const published = runs.reduce((n, r) => n + (r.stderr.match(/: published as /g) ?? []).length, 0)
  const wanted = shares.flat().length
  if (published !== wanted) throw new Error(`${published} image(s) published, ${wanted} expected:\n${runs.map((r) => r.stderr.slice(-2000)).join('\n')}`)
  return {
    wall,
    cpu: runs.reduce((s, r) => s + r.cpu, 0),
    commits: gateway.commitSeconds(name),
    revisions: gateway.published(name) - before,
    transactions: runs.reduce((n, r) => n + r.calls.filter((c) => c.verb === 'transaction' && c.rc === 0).length, 0),
    waits: runs.reduce((n, r) => n + r.calls.filter((c) => c.verb === 'transaction' && c.rc === 16).length, 0),
    writerWaits: runs.reduce((n, r) => n + r.calls.filter((c) => c.verb === 'publish' && c.rc === 1).length, 0),
    perPublisher: runs.map((r) => r.wall),
  }
}

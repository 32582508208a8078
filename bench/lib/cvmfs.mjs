// The real CernVM-FS of the kit in ../shared/testbed (README.md there): throw-away
// stratum-0 repositories named bench-<random>.test, their publish counts (revision
// numbers and a logging cvmfs_server first on PATH), and a plain client mount whose
// cache can be wiped for cold starts.
import {execFileSync, spawnSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync, readFileSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The directory holding the logging `cvmfs_server` (bench/lib/wrap). */
export const WRAP_DIR = join(dirname(fileURLToPath(import.meta.url)), 'wrap')

const STATE_DIR = process.env.CVMFS_KIT_STATE_DIR || '/var/lib/cvmfs-kit'

/**
 * The kit at `$CVMFS_OCI_BENCH_KIT`, else `<checkout>/../shared/testbed`, with CernVM-FS
 * installed from it; throws an error that says what is missing and what to do.
 */
export function findKit(top) {
  const dir = process.env.CVMFS_OCI_BENCH_KIT || join(top, '..', 'shared', 'testbed')
  const script = join(dir, 'cvmfs-stratum0.sh')
  if (!existsSync(script)) {
    throw new Error(`the CernVM-FS kit is missing: no ${script} (set CVMFS_OCI_BENCH_KIT to the folder holding cvmfs-stratum0.sh)`)
  }
  if (process.getuid?.() !== 0) throw new Error('the real-CVMFS sections need root (cvmfs_server, mounts)')
  const missing = ['cvmfs_server', 'cvmfs2', 'cvmfs_talk', 'cvmfs_ducc', 'attr'].filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0)
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: install the kit first (${join(dir, 'install.sh')} cvmfs)`)
  return new Kit(script)
}

export class Kit {
  constructor(script) {
    this.script = script
    /** Repositories started and not stopped yet (stopAll removes them on a signal). */
    this.live = new Set()
  }

  run(args) {
    const r = spawnSync(this.script, args, {stdio: ['ignore', 'pipe', 'pipe']})
    if (r.status !== 0) throw new Error(`${this.script} ${args.join(' ')} exited ${r.status}:\n${String(r.stderr).slice(-3000)}`)
    return String(r.stdout).trim()
  }

  /** A new repository `bench-<random>.test` (mkfs, not timed): its name. */
  start() {
    const name = `${process.env.CVMFS_OCI_BENCH_PREFIX ?? 'bench'}-${randomBytes(4).toString('hex')}.test`
    try {
      this.run(['start', name])
    } catch (error) {
      spawnSync(this.script, ['stop', name], {stdio: 'ignore'})
      throw error
    }
    this.live.add(name)
    return name
  }

  stop(name) {
    this.run(['stop', name])
    this.live.delete(name)
  }

  /** Stop every repository still running (after an interruption), ignoring failures. */
  stopAll() {
    for (const name of this.live) spawnSync(this.script, ['stop', name], {stdio: 'ignore'})
    this.live.clear()
  }

  /** The published revision (a new one per publish, ingest, or `transaction -T`). */
  revision(name) {
    return Number(execFileSync('attr', ['-qg', 'revision', `/var/spool/cvmfs/${name}/rdonly`]).toString())
  }

  /**
   * A plain client mount of `name` at `mountpoint` with an EMPTY cache: unmounts the
   * kit's client if it is mounted (waiting for cvmfs2 to exit), wipes the cache,
   * mounts again. Returns the cvmfs_talk socket.
   */
  coldClient(name, mountpoint) {
    const client = join(STATE_DIR, 'repos', name, 'client')
    const socket = join(client, 'run', `cvmfs_io.${name}`)
    if (spawnSync('mountpoint', ['-q', mountpoint]).status === 0) {
      const pid = spawnSync('cvmfs_talk', ['-p', socket, 'pid']).stdout?.toString().trim()
      execFileSync('umount', [mountpoint])
      for (let i = 0; pid && i < 150 && existsSync(`/proc/${pid}`) && !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) {
        spawnSync('sleep', ['0.1'])
      }
    }
    rmSync(join(client, 'cache'), {recursive: true, force: true})
    return this.run(['client', name, mountpoint])
  }
}

/** The client's counters (`cvmfs_talk internal affairs`, lines `name|value|description`). */
export function clientCounters(socket) {
  const out = execFileSync('cvmfs_talk', ['-p', socket, 'internal', 'affairs'], {maxBuffer: 1 << 26}).toString()
  const counters = {}
  for (const line of out.split('\n')) {
    const m = /^([\w.-]+)\|(\d+)\|/.exec(line)
    if (m) counters[m[1]] = Number(m[2])
  }
  return counters
}

/** The calls the logging cvmfs_server recorded: {start, end, rc, cpu, verb, args} (seconds). */
export function readCalls(file) {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start, end, rc, cpu, ...args] = line.split(' ')
      return {start: Number(start), end: Number(end), rc: Number(rc), cpu: Number(cpu), verb: args[0], args}
    })
}

/**
 * A REAL CernVM-FS repository behind a REAL repository gateway (`cvmfs_gateway` +
 * `cvmfs_receiver`) per test file, with several publishers of it, from the kit in
 * ../shared/testbed (`cvmfs-gateway.sh`; `CVMFS_OCI_KIT` names another folder holding it).
 * Each publisher lives in its own mount namespace (its own /cvmfs, /etc/cvmfs,
 * /var/spool/cvmfs): one machine stands in for several publisher machines. Each also gets
 * its own cvmfs-oci state directory (`CVMFS_OCI_STATE_DIR`), since the repository lock is
 * per machine: publishers on different machines meet only through the gateway.
 *
 * The CLI runs inside a publisher's namespace (`cvmfs-gateway.sh run NAME ID -- …`) with the
 * logging `cvmfs_server` wrapper first on PATH and a call log per publisher, as in
 * cvmfs.ts. Readers see the repository through `client()`: a plain CVMFS client mount on
 * the host, fetching from the gateway's stratum-0 over HTTP, brought to the newest revision.
 *
 * Names and ports are per file (`cvmfsoci-<label>-<random>.test`, free loopback ports),
 * so files running in parallel never share a gateway. The kit's start/stop run under the
 * same flock as cvmfs.ts's (`--close`: no daemon the kit starts may inherit the lock). A
 * gateway whose test process died is stopped by the next file that starts one.
 *
 * `cvmfs_server mkfs` of the gateway side (`start`) insists on a running Apache even with
 * `-p` (cvmfs_server 2.12 checks `is_local_upstream`, whatever -p says), although nothing
 * is served by it: when Apache is not running, `start` is bracketed by a throw-away
 * stratum-0 of `cvmfs-stratum0.sh`, which starts it (and whose `stop` leaves it running
 * while the gateway repository exists).
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {processAlive} from '../../src/backends/lock.js'
import {BIN, TOP, watch, type RunningCli} from './cli.js'
import {awaitClientAt, KIT_DIR, parseCalls, requireCvmfsKit, type ServerCall} from './cvmfs.js'
import {exec, type ExecResult} from './exec.js'
import {freePort} from './registry-process.js'

const LOGGING_DIR = join(TOP, 'test', 'cvmfs-server', 'logging')
const GATEWAY = join(KIT_DIR, 'cvmfs-gateway.sh')
const STRATUM0 = join(KIT_DIR, 'cvmfs-stratum0.sh')
/** The same lock as cvmfs.ts: the kit's start/stop one at a time. */
const KIT_LOCK = join(tmpdir(), 'cvmfs-oci-tests-kit.lock')
/** One file per gateway repository a test process made: its pid, for the sweep of orphans. */
const OWNERS = join(tmpdir(), 'cvmfs-oci-tests-gateways')

/** One publisher machine of the gateway repository. */
export interface Publisher {
  id: string
  /** Environment for the CLI inside the namespace: PATH (logging wrapper first), call log, its own state dir. */
  env: Record<string, string>
  /** `cvmfs-oci ARGS…` as this publisher; never throws on a non-zero exit. */
  cli(args: string[], options?: {env?: Record<string, string>; timeoutMs?: number}): Promise<ExecResult>
  /** `cvmfs-oci ARGS…` as this publisher, in the background. */
  start(args: string[], options?: {env?: Record<string, string>}): RunningCli
  /** `cvmfs_server ARGS…` (through the logging wrapper) as this publisher; never throws. */
  server(args: string[]): Promise<ExecResult>
  /** Any command inside this publisher's namespace; never throws. */
  run(command: string[]): Promise<ExecResult>
  /** The cvmfs_server calls this publisher's cvmfs-oci made since the last `clearCalls()`. */
  calls(): Promise<ServerCall[]>
  clearCalls(): Promise<void>
}

/** A lease the gateway holds (its `GET /leases` answer). */
export interface Lease {
  path: string
  hostname?: string
  expires?: string
}

export interface GatewayRepository {
  name: string
  /** `/cvmfs/<name>` as a publisher sees it. */
  root: string
  /** Make the gateway repository and its publishers (beforeAll). */
  start(publishers: string[]): Promise<void>
  publisher(id: string): Publisher
  /** The leases the gateway holds now. */
  leases(): Promise<Lease[]>
  /** The revision the stratum-0 serves (`S` line of .cvmfspublished). */
  revision(): Promise<number>
  /** A plain client mount on the host at the newest revision: what a worker node reads. */
  client(): Promise<string>
  /** Remove everything (afterAll). */
  cleanup(): Promise<void>
}

/** Fail loudly when the kit's gateway is missing. */
export function requireGatewayKit(): void {
  requireCvmfsKit()
  if (!existsSync(GATEWAY)) throw new Error(`the CernVM-FS test kit has no ${GATEWAY}: update ../shared/testbed (or CVMFS_OCI_KIT)`)
  const missing = ['/usr/bin/cvmfs_gateway', '/usr/bin/cvmfs_receiver'].filter((path) => !existsSync(path))
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} missing: the CernVM-FS gateway is not installed. Install the kit: ${join(KIT_DIR, 'install.sh')} cvmfs apptainer gateway (as root; .ci/run does it)`)
  }
}

/** `cvmfs-gateway.sh ARGS…` under the kit lock (start and stop only). */
function locked(script: string, args: string[], env: Record<string, string> = {}): Promise<ExecResult> {
  return exec('flock', ['--close', KIT_LOCK, script, ...args], {reject: false, timeoutMs: 180_000, env})
}

function lockedSync(script: string, args: string[]): void {
  spawnSync('flock', ['--close', KIT_LOCK, script, ...args], {stdio: 'ignore', timeout: 60_000})
}

/** Stop the gateway repositories whose test process is gone. */
function sweepOrphans(): void {
  for (const name of existsSync(OWNERS) ? readdirSync(OWNERS) : []) {
    if (processAlive(Number(readFileSync(join(OWNERS, name), 'utf8').trim()))) continue
    lockedSync(GATEWAY, ['stop', name])
    rmSync(join(OWNERS, name), {force: true})
  }
}

const live = new Map<string, string>()
let exitHook = false

/**
 * A gateway repository for one test file, named now and made by `start()` in beforeAll;
 * `cleanup()` in afterAll.
 *
 * @param label - a word naming the test file, part of the repository name.
 */
export function gatewayRepository(label: string): GatewayRepository {
  const name = `cvmfsoci-${label}-${Math.random().toString(36).slice(2, 8)}.test`
  const home = mkdtempSync(join(tmpdir(), 'cvmfs-oci-gateway-'))
  const root = join('/cvmfs', name)
  const clientMount = join(home, 'client', name)
  const clientState = join(home, 'client-state')
  const clientSocket = join(clientState, 'run', 'socket')
  let clientMounted = false
  let stratum0 = ''
  let gatewayUrl = ''
  const publishers = new Map<string, Publisher>()

  const inNamespace = (id: string, command: string[]) => [GATEWAY, 'run', name, id, '--', ...command]
  /** The manifest the stratum-0 serves now. */
  const published = async () => Buffer.from(await (await fetch(`${stratum0}/.cvmfspublished`)).arrayBuffer()).toString('latin1')

  function makePublisher(id: string): Publisher {
    const dir = join(home, 'publishers', id)
    mkdirSync(dir, {recursive: true})
    const callLog = join(dir, 'calls.log')
    writeFileSync(callLog, '')
    const env: Record<string, string> = {
      CVMFS_SERVER_CALL_LOG: callLog,
      CVMFS_OCI_STATE_DIR: join(dir, 'state'),
      CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json',
      CVMFS_OCI_ROOTS: '',
    }
    // The kit's `run` sets its own PATH: ours (the logging wrapper first) goes through env(1).
    const path = `PATH=${LOGGING_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`
    const cliCommand = (args: string[]) => inNamespace(id, ['env', path, process.execPath, BIN, ...args])
    return {
      id,
      env,
      cli: (args, options = {}) => {
        const [file, ...rest] = cliCommand(args)
        return exec(file!, rest, {reject: false, timeoutMs: options.timeoutMs ?? 300_000, env: {...env, ...options.env}})
      },
      start(args, options = {}) {
        const [file, ...rest] = cliCommand(args)
        return watch(spawn(file!, rest, {env: {...process.env, ...env, ...options.env}, stdio: ['ignore', 'pipe', 'pipe']}))
      },
      server: (args) => {
        const [file, ...rest] = inNamespace(id, ['env', path, 'cvmfs_server', ...args])
        return exec(file!, rest, {reject: false, env, timeoutMs: 180_000})
      },
      run: (command) => {
        const [file, ...rest] = inNamespace(id, command)
        return exec(file!, rest, {reject: false, timeoutMs: 180_000})
      },
      calls: async () => parseCalls(await readFile(callLog, 'utf8').catch(() => '')),
      clearCalls: async () => writeFile(callLog, ''),
    }
  }

  const repository: GatewayRepository = {
    name,
    root,
    async start(ids) {
      requireGatewayKit()
      sweepOrphans()
      mkdirSync(OWNERS, {recursive: true})
      writeFileSync(join(OWNERS, name), String(process.pid))
      live.set(name, home)
      if (!exitHook) {
        process.once('exit', () => {
          for (const [left, dir] of live) {
            spawnSync('umount', ['-l', join(dir, 'client', left)], {stdio: 'ignore'})
            lockedSync(GATEWAY, ['stop', left])
            rmSync(join(OWNERS, left), {force: true})
            try {
              rmSync(dir, {recursive: true, force: true})
            } catch {
              // nothing more to do on the way out
            }
          }
        })
        exitHook = true
      }
      const ports = {CVMFS_KIT_GATEWAY_PORT: String(await freePort()), CVMFS_KIT_GW_HTTP_PORT: String(await freePort())}
      // mkfs of the gateway side wants a running Apache (see the top of this file).
      const apache = `${name.replace(/\.test$/, '')}-apache.test`
      const script = [
        `if ! ${STRATUM0} status 2>/dev/null | grep -q '^apache: running'; then ${STRATUM0} start ${apache} >/dev/null || exit 1; fi`,
        `${GATEWAY} start ${name}; rc=$?`,
        `if [ -d /etc/cvmfs/repositories.d/${apache} ]; then ${STRATUM0} stop ${apache} || rc=1; fi`,
        'exit $rc',
      ].join('\n')
      const started = await exec('flock', ['--close', KIT_LOCK, 'bash', '-c', script], {reject: false, timeoutMs: 180_000, env: ports})
      gatewayUrl = started.stdout.trim().split('\n').pop() ?? ''
      if (started.exitCode !== 0 || !gatewayUrl.startsWith('http://127.0.0.1:')) {
        throw new Error(`${GATEWAY} start ${name} failed (exit ${started.exitCode}):\n${started.stderr}${started.stdout}`)
      }
      const env = (await exec(GATEWAY, ['env', name])).stdout
      stratum0 = env.match(/^CVMFS_KIT_STRATUM0=(.*)$/m)?.[1] ?? ''
      for (const id of ids) {
        const made = await exec(GATEWAY, ['publisher', name, id], {reject: false, timeoutMs: 180_000})
        if (made.exitCode !== 0) throw new Error(`${GATEWAY} publisher ${name} ${id} failed (exit ${made.exitCode}):\n${made.stderr}`)
        publishers.set(id, makePublisher(id))
      }
      console.log(`real CernVM-FS gateway repository ${name}: gateway ${gatewayUrl}, stratum-0 ${stratum0}, publishers ${ids.join(', ')}`)
    },
    publisher(id) {
      const found = publishers.get(id)
      if (!found) throw new Error(`no publisher ${id} of ${name} (start() makes them)`)
      return found
    },
    async leases() {
      const response = await fetch(`${gatewayUrl}/leases`)
      const body = (await response.json()) as {data?: Record<string, Lease>}
      return Object.values(body.data ?? {})
    },
    async revision() {
      const line = (await published()).split('\n--\n')[0]!.split('\n').find((l) => /^S\d+$/.test(l))
      if (!line) throw new Error(`no revision in ${stratum0}/.cvmfspublished`)
      return Number(line.slice(1))
    },
    async client() {
      if (!clientMounted) {
        await mkdir(join(clientState, 'cache'), {recursive: true})
        await mkdir(join(clientState, 'run'), {recursive: true})
        await mkdir(clientMount, {recursive: true})
        const config = join(clientState, `${name}.conf`)
        await writeFile(
          config,
          [
            `CVMFS_SERVER_URL=${stratum0.replace(/\/cvmfs\/[^/]+$/, '/cvmfs/@fqrn@')}`,
            'CVMFS_HTTP_PROXY=DIRECT',
            `CVMFS_PUBLIC_KEY=/etc/cvmfs/keys/${name}.pub`,
            'CVMFS_USER=root',
            'CVMFS_CLAIM_OWNERSHIP=no',
            `CVMFS_CACHE_BASE=${join(clientState, 'cache')}`,
            'CVMFS_SHARED_CACHE=no',
            'CVMFS_QUOTA_LIMIT=20000',
            `CVMFS_RELOAD_SOCKETS=${join(clientState, 'run')}`,
            `CVMFS_TALK_SOCKET=${clientSocket}`,
            'CVMFS_STRICT_MOUNT=no',
            `CVMFS_MOUNT_DIR=${join(home, 'client')}`,
            'CVMFS_MAX_TTL=1',
            'CVMFS_TIMEOUT=10',
            'CVMFS_TIMEOUT_DIRECT=10',
            `CVMFS_USYSLOG=${join(clientState, 'run', 'cvmfs.log')}`,
            '',
          ].join('\n'),
        )
        await exec('cvmfs2', ['-o', `config=${config},fsname=cvmfs2,allow_other`, name, clientMount], {timeoutMs: 120_000})
        clientMounted = true
        console.log(`plain CernVM-FS client of ${name} mounted at ${clientMount}`)
      }
      // The root catalog the stratum-0 signed last must be the one the client serves.
      await awaitClientAt(clientSocket, clientMount, await published())
      return clientMount
    },
    async cleanup() {
      if (clientMounted) {
        if ((await exec('umount', [clientMount], {reject: false})).exitCode !== 0) await exec('umount', ['-l', clientMount], {reject: false})
        clientMounted = false
      }
      if (live.has(name)) {
        const stopped = await locked(GATEWAY, ['stop', name])
        if (stopped.exitCode !== 0) throw new Error(`${GATEWAY} stop ${name} failed (exit ${stopped.exitCode}):\n${stopped.stderr}`)
        live.delete(name)
        await rm(join(OWNERS, name), {force: true})
      }
      await rm(home, {recursive: true, force: true})
    },
  }
  return repository
}

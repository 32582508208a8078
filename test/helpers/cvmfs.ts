/**
 * A REAL CernVM-FS stratum-0 repository per test file, from the kit in ../shared/testbed
 * (`cvmfs-stratum0.sh`; `CVMFS_OCI_KIT` names another folder holding it): made in
 * beforeAll (`start`, ~3-5 s), removed in afterAll (`stop`), with a fresh name
 * (`cvmfsoci-<label>-<random>.test`) so that files running in parallel never share one.
 * Readers see what a worker node sees through `client()`: a plain CVMFS client mount of the
 * repository, fetching over HTTP from the stratum-0, brought to the newest revision.
 *
 * The CLI and the tests run `test/cvmfs-server/logging/cvmfs_server` first on PATH: it
 * runs the real `cvmfs_server` and logs every call (`cvmfs_server ARGS… => EXIT`), so tests
 * can assert on the sequence of calls. Each file has its own state directory
 * (`CVMFS_OCI_STATE_DIR`), never the machine's /var/lib/cvmfs-oci.
 *
 * The kit's start/stop run one at a time (an flock), since two of them racing would both
 * start (or one stop) Apache. A repository whose test process died is removed by the next
 * file that starts one (its owner file names a pid that is gone), and at the latest by the
 * `exit` handler of the process that made it.
 */
import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'

import {processAlive} from '../../src/backends/lock.js'
import {TOP} from './cli.js'
import {exec, type ExecResult} from './exec.js'
import {requireTools, whichTool} from './tools.js'

const LOGGING_DIR = join(TOP, 'test', 'cvmfs-server', 'logging')
/** The kit: `<checkout>/../shared/testbed`, or `$CVMFS_OCI_KIT`. */
export const KIT_DIR = process.env.CVMFS_OCI_KIT || join(TOP, '..', 'shared', 'testbed')
const STRATUM0 = join(KIT_DIR, 'cvmfs-stratum0.sh')
/** Serialises the kit's start/stop between the test processes. */
const KIT_LOCK = join(tmpdir(), 'cvmfs-oci-tests-kit.lock')
/** One file per repository a test process made: its pid, for the sweep of orphans. */
const OWNERS = join(tmpdir(), 'cvmfs-oci-tests-repositories')

/** One logged `cvmfs_server` call. */
export interface ServerCall {
  /** The arguments, e.g. `['transaction', 'cvmfsoci-x.test']`. */
  args: string[]
  exitCode: number
}

export interface TestRepository {
  name: string
  /** The stratum-0's union mount `/cvmfs/<name>`: read-only outside a transaction. */
  root: string
  /** Environment for the CLI and for `cvmfs_server`: PATH (logging wrapper first), call log, state dir. */
  env: Record<string, string>
  /** Make the repository (beforeAll). */
  start(): Promise<void>
  /** The calls logged since the last `clearCalls()`. */
  calls(): Promise<ServerCall[]>
  clearCalls(): Promise<void>
  /** `cvmfs_server ARGS…` through the logging wrapper; never throws on a non-zero exit. */
  server(args: string[], options?: {input?: string | Buffer}): Promise<ExecResult>
  /** This repository's line of `cvmfs_server list` (other repositories on the machine are not ours). */
  listLine(): Promise<string>
  /**
   * A plain client mount of the repository (mounted on first use), at the newest published
   * revision: what a worker node reads.
   */
  client(): Promise<string>
  /** Remove the repository and everything of it (afterAll). */
  cleanup(): Promise<void>
}

/** Fail loudly, naming the kit, when CernVM-FS or the kit is not there. */
export function requireCvmfsKit(): void {
  if (!existsSync(STRATUM0)) {
    throw new Error(
      `the CernVM-FS test kit is missing: no ${STRATUM0}. The CVMFS tests run against a real stratum-0 made by the kit ../shared/testbed (set CVMFS_OCI_KIT to its folder if it is elsewhere).`,
    )
  }
  const missing = ['cvmfs_server', 'cvmfs2', 'cvmfs_talk'].filter((tool) => whichTool(tool) === undefined)
  if (missing.length > 0) {
    throw new Error(`${missing.join(', ')} not found on PATH: CernVM-FS is not installed. Install the kit: ${join(KIT_DIR, 'install.sh')} cvmfs apptainer gateway (as root; .ci/run does it)`)
  }
  if (process.getuid?.() !== 0) throw new Error('the CVMFS tests need root: the kit makes repositories with cvmfs_server mkfs and mounts clients')
  requireTools('flock', 'getfattr', 'setfattr', 'mount', 'umount')
}

/** `cvmfs-stratum0.sh ARGS…` under the kit lock. */
function kit(args: string[]): Promise<ExecResult> {
  return exec('flock', ['--close', KIT_LOCK, STRATUM0, ...args], {reject: false, timeoutMs: 180_000})
}

function kitSync(args: string[]): void {
  spawnSync('flock', ['--close', KIT_LOCK, STRATUM0, ...args], {stdio: 'ignore', timeout: 60_000})
}

const live = new Map<string, string>()
let exitHook = false

function ownerFile(name: string): string {
  return join(OWNERS, name)
}

/** Stop the repositories whose test process is gone (killed before its afterAll and exit handler). */
function sweepOrphans(): void {
  for (const name of existsSync(OWNERS) ? readdirSync(OWNERS) : []) {
    if (processAlive(Number(readFileSync(ownerFile(name), 'utf8').trim()))) continue
    kitSync(['stop', name])
    rmSync(ownerFile(name), {force: true})
  }
}

/**
 * A real repository for one test file, named now (so describe titles can name it) and made
 * by `start()` in beforeAll; `cleanup()` in afterAll.
 *
 * @param label - a word naming the test file, part of the repository name.
 */
export function testRepository(label: string): TestRepository {
  const name = `cvmfsoci-${label}-${Math.random().toString(36).slice(2, 8)}.test`
  const home = mkdtempSync(join(tmpdir(), 'cvmfs-oci-cvmfs-'))
  // Others may read the client mount below it (apptainer as an unprivileged user).
  chmodSync(home, 0o755)
  const callLog = join(home, 'calls.log')
  const env: Record<string, string> = {
    PATH: `${LOGGING_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    CVMFS_SERVER_CALL_LOG: callLog,
    CVMFS_OCI_STATE_DIR: join(home, 'state'),
  }
  const root = join('/cvmfs', name)
  const clientMount = join(home, 'client', name)
  let socket: string | undefined
  const server = (args: string[], options: {input?: string | Buffer} = {}) => exec('cvmfs_server', args, {env, input: options.input, reject: false})

  const repository: TestRepository = {
    name,
    root,
    env,
    async start() {
      requireCvmfsKit()
      sweepOrphans()
      mkdirSync(OWNERS, {recursive: true})
      writeFileSync(ownerFile(name), String(process.pid))
      live.set(name, home)
      if (!exitHook) {
        // Last resort when a file dies before its afterAll: synchronous, as 'exit' handlers must be.
        process.once('exit', () => {
          for (const [left, dir] of live) {
            kitSync(['stop', left])
            for (const path of [ownerFile(left), dir]) {
              try {
                rmSync(path, {recursive: true, force: true})
              } catch {
                // A client mount that would not go: nothing more to do on the way out.
              }
            }
          }
        })
        exitHook = true
      }
      const started = await kit(['start', name])
      if (started.exitCode !== 0 || started.stdout.trim() !== root) {
        throw new Error(`${STRATUM0} start ${name} failed (exit ${started.exitCode}):\n${started.stderr}${started.stdout}`)
      }
      // As README's stratum-0 set-up says: CernVM-FS keeps device nodes and FIFOs published in
      // transactions unless CVMFS_IGNORE_SPECIAL_FILES=true (the kit's choice) drops them.
      const conf = join('/etc/cvmfs/repositories.d', name, 'server.conf')
      await writeFile(conf, (await readFile(conf, 'utf8')).replace(/^CVMFS_IGNORE_SPECIAL_FILES=.*$/m, 'CVMFS_IGNORE_SPECIAL_FILES=false'))
      console.log(`real CernVM-FS stratum-0 repository ${name} (${root}) made by ${STRATUM0}`)
      await writeFile(callLog, '')
    },
    calls: async () => parseCalls(await readFile(callLog, 'utf8').catch(() => '')),
    clearCalls: async () => writeFile(callLog, ''),
    server,
    async listLine() {
      // cvmfs_server list fails while another repository (another test file's) is being removed: try again.
      let list = await exec('cvmfs_server', ['list'], {reject: false})
      for (let attempt = 1; list.exitCode !== 0 && attempt < 5; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 300))
        list = await exec('cvmfs_server', ['list'], {reject: false})
      }
      const line = list.stdout.split('\n').find((l) => l.startsWith(`${name} (`))
      if (list.exitCode !== 0 || line === undefined) throw new Error(`cvmfs_server list (exit ${list.exitCode}) does not name ${name}:\n${list.stdout}${list.stderr}`)
      return line.trimEnd()
    },
    async client() {
      if (socket === undefined) {
        const mounted = await kit(['client', name, clientMount])
        if (mounted.exitCode !== 0) throw new Error(`${STRATUM0} client ${name} ${clientMount} failed (exit ${mounted.exitCode}):\n${mounted.stderr}`)
        socket = mounted.stdout.trim()
        console.log(`plain CernVM-FS client of ${name} mounted at ${clientMount}`)
      }
      // The root catalog the stratum-0 signed last (the `C` line of the manifest it serves):
      // the client must serve exactly it (its magic attribute user.root_hash).
      await awaitClientAt(socket, clientMount, await readFile(join('/srv/cvmfs', name, '.cvmfspublished'), 'latin1'))
      return clientMount
    },
    async cleanup() {
      if (live.has(name)) {
        const stopped = await kit(['stop', name])
        if (stopped.exitCode !== 0) throw new Error(`${STRATUM0} stop ${name} failed (exit ${stopped.exitCode}):\n${stopped.stderr}`)
        live.delete(name)
        await rm(ownerFile(name), {force: true})
      }
      await rm(home, {recursive: true, force: true})
    },
  }
  return repository
}

/**
 * Bring a client mount to the root catalog a manifest (`.cvmfspublished`, its `C` line)
 * names: `remount sync` until the client serves exactly it (its magic attribute
 * user.root_hash); fail after 30 s.
 */
export async function awaitClientAt(socket: string, mountPoint: string, manifest: string): Promise<void> {
  const published = manifest.split('\n').find((line) => line.startsWith('C'))?.slice(1)
  const deadline = Date.now() + 30_000
  for (;;) {
    await exec('cvmfs_talk', ['-p', socket, 'remount', 'sync'])
    const seen = (await exec('getfattr', ['-n', 'user.root_hash', '--only-values', mountPoint])).stdout.trim()
    if (seen === published) return
    if (Date.now() > deadline) throw new Error(`the client at ${mountPoint} stays at root catalog ${seen}, the stratum-0 published ${published}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Parse the call log: `cvmfs_server ARGS… => EXIT` per line. */
export function parseCalls(text: string): ServerCall[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('cvmfs_server '))
    .map((line) => {
      const arrow = line.lastIndexOf(' => ')
      return {args: line.slice('cvmfs_server '.length, arrow).split(' ').filter((a) => a !== ''), exitCode: Number(line.slice(arrow + 4))}
    })
}

/** The calls that change the repository (transaction, publish, abort, ingest), as `verb target` strings. */
export function changeCalls(calls: ServerCall[]): string[] {
  return calls.filter((c) => ['transaction', 'publish', 'abort', 'ingest'].includes(c.args[0]!)).map((c) => `${c.args.join(' ')} => ${c.exitCode}`)
}

/**
 * DUCC converts one image into the repository (`http://` for a plain-HTTP registry):
 * `cvmfs_ducc -t TMPDIR convert-single-image URL NAME` (~40 s for a small image here).
 */
export async function duccConvert(tmpDir: string, imageUrl: string, name: string): Promise<void> {
  if (whichTool('cvmfs_ducc') === undefined) throw new Error(`cvmfs_ducc not found on PATH: install the kit's CernVM-FS (${join(KIT_DIR, 'install.sh')} cvmfs)`)
  await exec('cvmfs_ducc', ['-t', tmpDir, 'convert-single-image', imageUrl, name], {timeoutMs: 300_000})
}

/** A second client mount of a kit repository; see {@link mountExtraClient}. */
export interface ExtraClient {
  mountPoint: string
  socket: string
  /** Unmount it (lazily when busy) and remove its state (idempotent). */
  unmount(): Promise<void>
}

/**
 * One more plain client of a kit repository, beside the kit's own one (`client`, which
 * must be mounted first: its configuration file is the model), as a second worker node
 * with another configuration would have: the kit's file with its own cache, sockets and
 * log, plus `config` lines. `personality` starts cvmfs2 under `setarch` (e.g. `i686`, the
 * 32-bit personality of an x86_64 machine), which changes what `uname -m` says to it.
 */
export async function mountExtraClient(
  name: string,
  mountPoint: string,
  options: {config?: Record<string, string>; personality?: string} = {},
): Promise<ExtraClient> {
  const kitSocket = (await kit(['env', name])).stdout.match(/^CVMFS_KIT_CLIENT_SOCKET=(.*)$/m)?.[1]
  if (!kitSocket) throw new Error(`mountExtraClient: ${name} has no kit client mount yet (call its repository's client() first)`)
  const kitConfig = join(dirname(dirname(kitSocket)), `${name}.conf`)
  const state = await mkdtemp(join(tmpdir(), 'cvmfs-oci-client-'))
  const own: Record<string, string> = {
    CVMFS_CACHE_BASE: join(state, 'cache'),
    CVMFS_RELOAD_SOCKETS: join(state, 'run'),
    CVMFS_TALK_SOCKET: join(state, 'run', 'socket'),
    CVMFS_USYSLOG: join(state, 'run', 'cvmfs.log'),
    CVMFS_MOUNT_DIR: dirname(mountPoint),
    ...options.config,
  }
  const lines = (await readFile(kitConfig, 'utf8')).split('\n').filter((line) => !Object.keys(own).some((key) => line.startsWith(`${key}=`)))
  const config = join(state, `${name}.conf`)
  await writeFile(config, [...lines, ...Object.entries(own).map(([key, value]) => `${key}=${value}`), ''].join('\n'))
  for (const dir of [own.CVMFS_CACHE_BASE!, own.CVMFS_RELOAD_SOCKETS!, mountPoint]) await mkdir(dir, {recursive: true})
  const cvmfs2 = ['cvmfs2', '-o', `config=${config},fsname=cvmfs2,allow_other`, name, mountPoint]
  await exec(options.personality ? 'setarch' : cvmfs2[0]!, options.personality ? [options.personality, ...cvmfs2] : cvmfs2.slice(1), {timeoutMs: 120_000})
  let mounted = true
  return {
    mountPoint,
    socket: own.CVMFS_TALK_SOCKET!,
    unmount: async () => {
      if (mounted && (await exec('umount', [mountPoint], {reject: false})).exitCode !== 0) await exec('umount', ['-l', mountPoint], {reject: false})
      mounted = false
      await rm(state, {recursive: true, force: true})
    },
  }
}

/** The repository's current revision, from the manifest its stratum-0 serves (`S<revision>` line of .cvmfspublished). */
export async function publishedRevision(name: string): Promise<number> {
  const url = (await kit(['env', name])).stdout.match(/^CVMFS_KIT_STRATUM0=(.*)$/m)?.[1]
  if (!url) throw new Error(`publishedRevision: no stratum-0 URL for ${name}`)
  const response = await fetch(`${url}/.cvmfspublished`)
  if (!response.ok) throw new Error(`publishedRevision: ${url}/.cvmfspublished answered ${response.status}`)
  const text = Buffer.from(await response.arrayBuffer()).toString('latin1')
  const line = text.split('\n--\n')[0]!.split('\n').find((l) => /^S\d+$/.test(l))
  if (!line) throw new Error(`publishedRevision: no revision line in ${url}/.cvmfspublished`)
  return Number(line.slice(1))
}

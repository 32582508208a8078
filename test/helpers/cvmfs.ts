/**
 * The CVMFS repository the backend tests publish into.
 *
 * By default a fresh repository of the STAND-IN `test/cvmfs-server/cvmfs_server` (CVMFS
 * cannot be installed here; the stand-in answers as a CernVM-FS 2.12 stratum-0 does, see
 * its header), in a temp dir of its own, mounted read-only outside transactions.
 *
 * With `CVMFS_OCI_TEST_REPO=NAME` the same tests drive the real stratum-0's repository
 * NAME (a throw-away one: the tests publish, remove and garbage-collect in it) through
 * `test/cvmfs-server/logging/cvmfs_server`, which logs each call the way the stand-in
 * does and runs the real `cvmfs_server`. Nothing else changes.
 */
import {spawnSync} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {TOP} from './cli.js'
import {exec, type ExecResult} from './exec.js'
import {mountsUnder} from './podman.js'
import {requireTools} from './tools.js'

export const STAND_IN_DIR = join(TOP, 'test', 'cvmfs-server')
const LOGGING_DIR = join(STAND_IN_DIR, 'logging')

/** One logged `cvmfs_server` call. */
export interface ServerCall {
  /** The arguments, e.g. `['transaction', 'test.local']`. */
  args: string[]
  exitCode: number
}

export interface TestRepository {
  name: string
  /** Where it is mounted (`<mount>/<name>`): read-only outside a transaction. */
  root: string
  /** True for the stand-in, false for a real stratum-0. */
  standIn: boolean
  /** Environment for the CLI and for `cvmfs_server`: PATH, mount point, state dir, call log. */
  env: Record<string, string>
  /** The calls logged since the last `clearCalls()`. */
  calls(): Promise<ServerCall[]>
  clearCalls(): Promise<void>
  /** `cvmfs_server ARGS…` as the CLI would run it; never throws on a non-zero exit. */
  server(args: string[], options?: {input?: string | Buffer}): Promise<ExecResult>
  cleanup(): Promise<void>
}

const leftovers = new Set<string>()
let exitHook = false

/** A repository for one test file: call `cleanup()` in afterAll. */
export async function testRepository(): Promise<TestRepository> {
  requireTools('mount', 'umount', 'mountpoint', 'flock', 'tar', 'getfattr', 'setfattr')
  const real = process.env.CVMFS_OCI_TEST_REPO
  const home = await mkdtemp(join(tmpdir(), 'cvmfs-oci-cvmfs-'))
  const callLog = join(home, 'calls.log')
  const env: Record<string, string> = {
    PATH: `${real ? LOGGING_DIR : STAND_IN_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    CVMFS_SERVER_CALL_LOG: callLog,
  }
  let name: string
  let mount: string
  if (real) {
    name = real
    mount = process.env.CVMFS_OCI_CVMFS_MOUNT || '/cvmfs'
  } else {
    name = `test-${Math.random().toString(36).slice(2, 8)}.local`
    mount = join(home, 'cvmfs')
    Object.assign(env, {CVMFS_STANDIN_HOME: home, CVMFS_OCI_CVMFS_MOUNT: mount, CVMFS_OCI_STATE_DIR: join(home, 'state')})
  }
  const server = (args: string[], options: {input?: string | Buffer} = {}) => exec('cvmfs_server', args, {env, input: options.input, reject: false})
  const repository: TestRepository = {
    name,
    root: join(mount, name),
    standIn: !real,
    env,
    server,
    calls: async () => parseCalls(await readFile(callLog, 'utf8').catch(() => '')),
    clearCalls: async () => writeFile(callLog, ''),
    cleanup: async () => {
      if (!real) {
        await server(['rmfs', '-f', name])
        for (const mountPoint of await mountsUnder(home)) await exec('umount', ['-l', mountPoint], {reject: false})
        leftovers.delete(home)
      }
      await rm(home, {recursive: true, force: true})
    },
  }
  if (!real) {
    leftovers.add(home)
    if (!exitHook) {
      process.once('exit', () => {
        // Last resort when a file dies before its afterAll.
        for (const dir of leftovers) spawnUnmount(dir)
      })
      exitHook = true
    }
    const made = await server(['mkfs', '-o', 'root', name])
    if (made.exitCode !== 0) throw new Error(`the cvmfs_server stand-in could not make ${name}:\n${made.stderr}${made.stdout}`)
  }
  await repository.clearCalls()
  return repository
}

function spawnUnmount(dir: string): void {
  // Synchronous: 'exit' handlers cannot wait.
  const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET'], {encoding: 'utf8'}).stdout.split('\n').filter((m) => m.startsWith(dir))
  for (const mountPoint of mounts.reverse()) spawnSync('umount', ['-l', mountPoint])
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

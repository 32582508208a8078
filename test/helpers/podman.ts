/**
 * A real podman per test file, isolated from the machine: its own
 * containers.conf, storage.conf, registries.conf, graph root, run root, temp
 * dir and hooks dir in a temp directory. Plus read-only bind mounts, the
 * stand-in for a read-only CVMFS mount.
 */
import {spawnSync} from 'node:child_process'
import {mkdir, mkdtemp, readFile, rm, rmdir, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {exec, type ExecResult} from './exec.js'
import {requireTools} from './tools.js'

/**
 * What docs/test-environment.md says podman needs on these machines (no
 * CAP_SYS_RESOURCE, cgroups v1 hybrid), verbatim.
 */
export const CONTAINERS_CONF_FROM_DOC = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

/** Options for {@link isolatedPodman}. */
export interface IsolatedPodmanOptions {
  /** Registries (`host:port`) to reach over plain HTTP, e.g. `[registryAddress()]`. */
  insecureRegistries?: string[]
}

/** Options for one podman invocation. */
export interface PodmanRunOptions {
  input?: string | Buffer
  timeoutMs?: number
  env?: Record<string, string>
  /** Throw on a non-zero exit instead of returning it. Default false. */
  check?: boolean
}

/** An isolated podman; see {@link isolatedPodman}. */
export interface IsolatedPodman {
  /** The temp dir holding its configuration and storage. */
  dir: string
  /** Environment every invocation gets (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, …). */
  env: Record<string, string>
  /** Global flags every invocation starts with (`--root`, `--runroot`, `--tmpdir`). */
  args: string[]
  /** Run `podman <args> <...args>`; resolves with the exit code (non-zero does not throw unless `check`). */
  run(args: string[], opts?: PodmanRunOptions): Promise<ExecResult>
  /** Remove its containers, unmount what it left mounted, delete the temp dir. */
  cleanup(): Promise<void>
}

/** Mount points (from /proc/self/mountinfo) at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescape)
    .filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length)
}

/**
 * Create an isolated podman. Call `cleanup()` in `afterAll`.
 *
 * Beyond the doc's containers.conf it sets, for isolation only: `netns =
 * "none"` (netavark keeps state in /run/containers/networks and iptables
 * whatever `--root` says; pass `--network` to override) and `hooks_dir` (so
 * hooks installed on the machine do not run; pass `--hooks-dir` to use some).
 */
export async function isolatedPodman(opts: IsolatedPodmanOptions = {}): Promise<IsolatedPodman> {
  requireTools('podman', 'runc', 'conmon')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cvmfs-oci-podman-'))
  const root = path.join(dir, 'root')
  const runroot = path.join(dir, 'runroot')
  const tmpdir = path.join(dir, 'tmp')
  const hooksDir = path.join(dir, 'hooks.d')
  for (const d of [root, runroot, tmpdir, hooksDir]) await mkdir(d, {recursive: true})

  const containersConf = CONTAINERS_CONF_FROM_DOC.replace(
    '[containers]\n',
    '[containers]\n# isolation (tests only): no netavark state shared with the machine\nnetns = "none"\n',
  ).concat(`# isolation (tests only): no hooks installed on the machine\nhooks_dir = [${JSON.stringify(hooksDir)}]\n`)
  const storageConf = `[storage]\ndriver = "overlay"\ngraphroot = ${JSON.stringify(root)}\nrunroot = ${JSON.stringify(runroot)}\n`
  const registriesConf = [
    'unqualified-search-registries = []',
    ...(opts.insecureRegistries ?? []).map((r) => `[[registry]]\nlocation = ${JSON.stringify(r)}\ninsecure = true`),
    '',
  ].join('\n')
  const files = {
    CONTAINERS_CONF: ['containers.conf', containersConf],
    CONTAINERS_STORAGE_CONF: ['storage.conf', storageConf],
    CONTAINERS_REGISTRIES_CONF: ['registries.conf', registriesConf],
  } as const
  // podman insists that REGISTRY_AUTH_FILE exists.
  await writeFile(path.join(dir, 'auth.json'), '{"auths":{}}\n')
  const env: Record<string, string> = {REGISTRY_AUTH_FILE: path.join(dir, 'auth.json')}
  for (const [variable, [name, text]] of Object.entries(files)) {
    await writeFile(path.join(dir, name), text)
    env[variable] = path.join(dir, name)
  }
  const args = ['--root', root, '--runroot', runroot, '--tmpdir', tmpdir]

  const run = (cmdArgs: string[], runOpts: PodmanRunOptions = {}) =>
    exec('podman', [...args, ...cmdArgs], {
      env: {...env, ...runOpts.env},
      input: runOpts.input,
      timeoutMs: runOpts.timeoutMs,
      reject: runOpts.check ?? false,
    })

  const cleanup = async () => {
    await run(['rm', '--all', '--force', '--time', '0']).catch(() => undefined)
    // podman's overlay driver bind-mounts its graph root onto itself; containers may leave more.
    for (const mountPoint of await mountsUnder(dir)) await exec('umount', ['-l', mountPoint], {reject: false})
    await rm(dir, {recursive: true, force: true})
  }
  return {dir, env, args, run, cleanup}
}

/** A read-only bind mount; see {@link readonlyBindMount}. */
export interface ReadonlyMount {
  path: string
  /** Unmount and remove the mount point (idempotent). */
  unmount(): Promise<void>
}

const activeMounts = new Set<string>()
let exitHookInstalled = false

function unmountLeftoversOnExit(): void {
  // Last resort when a test file dies before its afterAll; the caller is still
  // expected to unmount in afterAll/finally.
  for (const mountPoint of activeMounts) {
    spawnSync('umount', ['-l', mountPoint])
    spawnSync('rmdir', [mountPoint])
  }
}

/**
 * Bind-mount `src` read-only at a new temp mount point (`mount --bind` then
 * `mount -o remount,bind,ro`) — the tests' stand-in for a read-only CVMFS
 * mount. The caller MUST call `unmount()` in `afterAll` or `finally` so the
 * mount goes away even when a test fails; an exit hook only catches leftovers.
 */
export async function readonlyBindMount(src: string): Promise<ReadonlyMount> {
  requireTools('mount', 'umount')
  const mountPoint = await mkdtemp(path.join(os.tmpdir(), 'cvmfs-oci-ro-'))
  await exec('mount', ['--bind', src, mountPoint])
  activeMounts.add(mountPoint)
  if (!exitHookInstalled) {
    process.once('exit', unmountLeftoversOnExit)
    exitHookInstalled = true
  }
  const unmount = async () => {
    if (!activeMounts.has(mountPoint)) return
    const plain = await exec('umount', [mountPoint], {reject: false})
    if (plain.exitCode !== 0) await exec('umount', ['-l', mountPoint]) // busy: detach now, free later
    activeMounts.delete(mountPoint)
    await rmdir(mountPoint)
  }
  try {
    await exec('mount', ['-o', 'remount,bind,ro', mountPoint])
  } catch (err) {
    await unmount()
    throw err
  }
  return {path: mountPoint, unmount}
}

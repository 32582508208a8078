/**
 * The CVMFS transaction backend, on a real stratum-0 (from the kit), when things go wrong around it: a publisher killed with
 * SIGKILL mid-transaction (the next run aborts that transaction and publishes), SIGTERM
 * mid-transaction (aborted before exiting 143), two publishers started together (they
 * serialise on the repository lock), and a transaction someone else opened (left alone).
 */
import {spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {lstat, mkdir, readdir} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {BIN, cli, unwrapped} from '../helpers/cli.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {exec} from '../helpers/exec.js'
import {versionImage, type ImageSpec} from '../helpers/oci-layout.js'
import {pushImage, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {diffTrees, snapshotTree} from '../helpers/tree.js'

const repo = testRepository('recovery')
const work = useTempDir('cvmfs-oci-recovery-', 'all')
let registry: string
const unique = Date.now().toString(36)
const run = (args: string[]) => cli(args, {env: repo.env})

const small = versionImage
const push = (spec: ImageSpec, tag: string) => pushImage(work(), spec, tag)

/** Start `publish` and wait until it is unpacking inside its transaction. */
async function publishUntilUnpacking(ref: string) {
  const child = spawn(process.execPath, [BIN, 'publish', '--repo', repo.name, '--tls-verify=false', ref], {
    env: {...process.env, ...repo.env, CVMFS_OCI_CONFIG: '/nonexistent/config.json'},
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))))
  const staging = join(repo.root, '.cvmfs-oci', 'staging')
  const deadline = Date.now() + 60_000
  for (;;) {
    const inside = await readdir(staging).catch(() => [] as string[])
    if (inside.length > 0 && (await readdir(join(staging, inside[0]!, 'data')).catch(() => [] as string[])).length > 1) break
    if (child.exitCode !== null) throw new Error(`publish ended before unpacking:\n${stderr}`)
    if (Date.now() > deadline) throw new Error(`publish never started unpacking:\n${stderr}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return {child, exited, stderr: () => stderr}
}

let big: string

beforeAll(async () => {
  requireTools('skopeo')
  registry = registryAddress()
  await repo.start()
  const first = await run(['publish', '--repo', repo.name, '--tls-verify=false', await push(small('v1'), `recovery-${unique}/app:1`)])
  expect(first.exitCode, first.stderr).toBe(0)
  // Big enough that unpacking takes a moment: 16 files of 4 MiB that do not compress.
  const entries = Array.from({length: 16}, (_, i) => ({name: `data/blob${i}`, content: randomBytes(4 << 20)}))
  big = await push({layers: [...small('big').layers, {entries}]}, `recovery-${unique}/big:1`)
}, 120_000)
afterAll(async () => {
  await repo.cleanup() // aborts a transaction left open
})

describe(`interrupted publishers, on the real stratum-0 ${repo.name}`, () => {
  it('SIGTERM mid-transaction aborts it, exits 143 and leaves the repository as it was', async () => {
    const before = await snapshotTree(repo.root)
    await repo.clearCalls()
    const publisher = await publishUntilUnpacking(big)
    publisher.child.kill('SIGTERM')
    expect(await publisher.exited).toBe(143)
    expect(publisher.stderr()).toContain('interrupted by SIGTERM')
    // Its download (tmp's `cvmfs-oci--PID-…`) is gone with it.
    expect((await readdir(tmpdir())).filter((name) => name.startsWith(`cvmfs-oci--${publisher.child.pid}-`))).toEqual([])
    expect(changeCalls(await repo.calls())).toEqual([`transaction ${repo.name} => 0`, `abort -f ${repo.name} => 0`])
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
    // Lock and marker are gone: the next run neither waits nor recovers anything.
    const next = await run(['publish', '--repo', repo.name, '--tls-verify=false', '--lock-timeout', '0', `${registry}/recovery-${unique}/app:1`])
    expect(next.exitCode, next.stderr).toBe(0)
    expect(next.stderr).not.toContain('left in a transaction')
  })

  it('kill -9 mid-transaction: the next run aborts the dead run\'s transaction, then publishes', async () => {
    const publisher = await publishUntilUnpacking(big)
    publisher.child.kill('SIGKILL')
    await publisher.exited
    expect(await repo.listLine()).toContain('in transaction')

    await repo.clearCalls()
    const rerun = await run(['publish', '--repo', repo.name, '--tls-verify=false', big])
    expect(rerun.exitCode, rerun.stderr).toBe(0)
    expect(rerun.stderr).toMatch(/taking over the lock .* left by process \d+/)
    expect(rerun.stderr).toMatch(/left in a transaction by cvmfs-oci process \d+ .*which is gone: aborting/)
    expect(changeCalls(await repo.calls())).toEqual([`abort -f ${repo.name} => 0`, `transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
    for (const root of [repo.root, await repo.client()]) {
      const rootfs = (await run(['resolve', '--root', root, big])).stdout.trim()
      expect((await readdir(join(rootfs, 'data'))).length, root).toBe(16)
      await expect(lstat(join(root, '.cvmfs-oci')), root).rejects.toThrow()
    }
  })

  it('two publishers started together serialise on the lock, and both succeed', async () => {
    // One after another: concurrent pushes of the same blobs can make Distribution answer 500.
    const x = await push(small('x'), `recovery-${unique}/x:1`)
    const y = await push(small('y'), `recovery-${unique}/y:1`)
    await repo.clearCalls()
    const [rx, ry] = await Promise.all([x, y].map((ref) => run(['publish', '--repo', repo.name, '--tls-verify=false', ref])))
    expect(rx!.exitCode, rx!.stderr).toBe(0)
    expect(ry!.exitCode, ry!.stderr).toBe(0)
    expect(rx!.stderr + ry!.stderr).toMatch(/waiting for process \d+ .*which holds repository/)
    // Never two transactions at once: transaction, publish, transaction, publish.
    expect(changeCalls(await repo.calls())).toEqual([
      `transaction ${repo.name} => 0`,
      `publish ${repo.name} => 0`,
      `transaction ${repo.name} => 0`,
      `publish ${repo.name} => 0`,
    ])
  })

  it('reads its own repository only: another repository vanishing meanwhile changes nothing', async () => {
    requireTools('unshare')
    // For this CLI alone (a private mount namespace), /etc/cvmfs/repositories.d holds this
    // repository and one whose configuration is gone, as while another repository's rmfs
    // runs: the real cvmfs_server list fails on it (exit 2; checked below). cvmfs-oci reads
    // its own repository's server.conf and transaction flag, never cvmfs_server list.
    const view = join(work(), 'repositories.d')
    await mkdir(join(view, repo.name), {recursive: true})
    await mkdir(join(view, 'aaa-being-removed.test'))
    const inNamespace = [
      'set -e',
      `mount --bind /etc/cvmfs/repositories.d/${repo.name} ${view}/${repo.name}`,
      `mount --rbind ${view} /etc/cvmfs/repositories.d`,
      'exec "$@"',
    ].join('\n')
    await repo.clearCalls()
    const result = await exec(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', inNamespace, 'sh', process.execPath, BIN, 'publish', '--repo', repo.name, '--tls-verify=false', `${registry}/recovery-${unique}/app:1`],
      {
        reject: false,
        env: {
          ...repo.env,
          CVMFS_OCI_CONFIG: '/nonexistent/config.json',
        },
      },
    )
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stderr).toContain('unchanged')
    expect((await repo.calls()).filter((call) => call.args[0] === 'list')).toEqual([])
    // What it did not ask: in that view, the real cvmfs_server list fails.
    const list = await exec('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inNamespace, 'sh', 'cvmfs_server', 'list'], {reject: false})
    expect(list.exitCode, list.stdout + list.stderr).toBe(2)
  })

  it('leaves alone a transaction cvmfs-oci did not open, and says whose it is', async () => {
    expect((await repo.server(['transaction', repo.name])).exitCode).toBe(0)
    try {
      await repo.clearCalls()
      const result = await run(['publish', '--repo', repo.name, '--tls-verify=false', await push(small('z'), `recovery-${unique}/z:1`)])
      expect(result.exitCode).toBe(6)
      expect(result.stderr).toContain('E_TRANSACTION_OPEN')
      expect(unwrapped(result.stderr)).toContain('is in a transaction that cvmfs-oci did not open')
      expect(changeCalls(await repo.calls())).toEqual([])
    } finally {
      await repo.server(['abort', '-f', repo.name])
    }
  })
})

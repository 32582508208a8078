/**
 * The fast path (src/cli/fast-run.ts) behaves as oclif does, or leaves the command line
 * to oclif: its parser, against oclif's own parsing of the same definitions (the command
 * classes oclif loads), on a table of command lines and on thousands of random ones; and
 * the whole CLI, every output byte and exit code, with the fast path and without
 * (CVMFS_OCI_NO_FAST_PATH=1: oclif runs everything).
 */
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Config} from '@oclif/core'
import {beforeAll, describe, expect, it} from 'vitest'

import {oclifCommand} from '../../src/cli/base-command.js'
import doctor from '../../src/cli/definitions/doctor.js'
import gc from '../../src/cli/definitions/gc.js'
import hookInstall from '../../src/cli/definitions/hook-install.js'
import hookUninstall from '../../src/cli/definitions/hook-uninstall.js'
import hookValidate from '../../src/cli/definitions/hook-validate.js'
import list from '../../src/cli/definitions/list.js'
import podmanConfigure from '../../src/cli/definitions/podman-configure.js'
import publish from '../../src/cli/definitions/publish.js'
import rmDefinition from '../../src/cli/definitions/rm.js'
import sync from '../../src/cli/definitions/sync.js'
import {allFlags, parseArgv} from '../../src/cli/fast-run.js'
import type {CommandDefinition} from '../../src/cli/spec.js'
import {busyboxLayer} from '../helpers/busybox.js'
import {cli, TOP} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {useTempDir} from '../helpers/temp-dir.js'

const DEFINITIONS: Record<string, CommandDefinition<any, any>> = {
  list,
  publish,
  sync,
  gc,
  rm: rmDefinition,
  doctor,
  'hook:install': hookInstall,
  'hook:uninstall': hookUninstall,
  'hook:validate': hookValidate,
  'podman:configure': podmanConfigure,
}

type Outcome = {flags: Record<string, unknown>; args: Record<string, unknown>; argv: unknown[]} | 'error'

let config: Config

/** What oclif makes of `argv` for this command: its class, its parse(), as when it runs. */
async function oclifParse(id: string, argv: string[]): Promise<Outcome> {
  const Command = oclifCommand(DEFINITIONS[id]!)
  Command.id = id
  const command = new (Command as unknown as new (argv: string[], config: Config) => {parse(c: unknown, argv: string[]): Promise<Exclude<Outcome, 'error'>>})(argv, config)
  try {
    const {flags, args, argv: rest} = await command.parse(Command, argv)
    return {flags, args, argv: rest}
  } catch {
    return 'error'
  }
}

beforeAll(async () => {
  config = await Config.load(TOP)
  // oclif reads a missing argument from stdin unless it is a terminal; tell it there is nothing.
  const global = globalThis as {oclif?: Record<string, unknown>}
  global.oclif = {...global.oclif, stdinCache: ''}
})

/** Command lines users type: each must be taken by the fast path, and parsed as oclif does. */
const TYPICAL: [string, string[]][] = [
  ['list', []],
  ['list', ['--root', '/srv/repo']],
  ['list', ['--root=/srv/a', '--root', '/srv/b', '--json']],
  ['list', ['--repo', 'a.example.org', '--config', '/etc/c.json', '-q']],
  ['publish', ['--root', '/srv/repo', 'alpine:3.20']],
  ['publish', ['--repo', 'unpacked.example.org', '--timestamps', '--platform', 'all', 'docker.io/library/alpine:3.20', 'busybox:1']],
  ['publish', ['alpine:3.20', '--root', '/srv/repo', '--tls-verify=false', '--lock-timeout', '0', '--json']],
  ['publish', ['--root', '/srv/repo', '--name', 'registry.example.org/sci/app:2', 'oci:/tmp/layout:2', '--debug']],
  ['publish', ['--repo', 'r.org', '--no-ingest', '--creds', 'user:secret', '--authfile', '/a.json', '--cert-dir', '/certs', '--tmpdir', '/t', 'x:1']],
  ['publish', ['--repo', 'r.org', '--ingest', '--lock-timeout=30', 'x:1']],
  ['sync', ['--dry-run', '/etc/cvmfs-oci/wishlist.yaml']],
  ['sync', ['--timestamps', '--repo', 'r.org', 'w.yaml', '--platform', 'linux/amd64,linux/arm64']],
  ['gc', ['--repo', 'unpacked.example.org', '--dry-run']],
  ['gc', ['--root', '/srv/repo', '--grace-period', '2d', '--batch-size', '10', '--timestamps']],
  ['rm', ['--repo', 'r.org', 'a:1', 'b:2']],
  ['rm', ['--root', '/srv/repo', '-i', 'alpine:3.19']],
  ['rm', ['--ignore', '--json', '--root', '/srv/repo', 'alpine:3.19']],
  ['doctor', []],
  ['doctor', ['--json', '--hooks-dir', '/etc/containers/oci/hooks.d', '--hooks-dir', '/usr/share/containers/oci/hooks.d', '--root', '/cvmfs/x']],
  ['hook:install', []],
  ['hook:install', ['--hooks-dir', '/etc/containers/oci/hooks.d', '--node', '/usr/bin/node', '--program', '/usr/libexec/cvmfs-oci/cvmfs-oci-hook']],
  ['hook:uninstall', ['--hooks-dir', '/h']],
  ['hook:validate', []],
  ['hook:validate', ['/etc/containers/oci/hooks.d', 'my-hook.json', '--json']],
  ['podman:configure', ['--repo', 'unpacked.cern.ch']],
  ['podman:configure', ['--storage-conf', '/s.conf', '--root', '/srv/repo', '--print']],
]

describe('the fast parser', () => {
  it.each(TYPICAL)('%s %j: taken, as oclif parses it', async (id, argv) => {
    const fast = parseArgv(DEFINITIONS[id]!, argv, () => true)
    expect(fast).toBeDefined()
    expect(fast).toStrictEqual(await oclifParse(id, argv))
  })

  it('leaves to oclif what oclif reads from stdin: a missing argument when stdin is not a terminal', () => {
    expect(parseArgv(hookValidate, [], () => false)).toBeUndefined()
    expect(parseArgv(hookValidate, ['/h'], () => false)).toBeDefined()
    expect(parseArgv(publish, ['--root', '/r'], () => true)).toBeUndefined()
  })

  /**
   * Pieces random command lines are made of, for one command: each flag with good values
   * (both spellings) and, apart, bad values and odd words.
   */
  function vocabulary(definition: CommandDefinition<any, any>): {good: string[][]; odd: string[][]} {
    const good: string[][] = [['x:1'], ['alpine:3.20'], ['/srv/repo']]
    const odd: string[][] = ['--', '-', '-5', '--help', '-h', '--bogus', '-x', '-qi', '-iq', '--no-bogus', '--debug=true', '--json=1', '--no-json', '--constructor', '--__proto__', '--no-toString'].map((w) => [w])
    for (const [name, spec] of Object.entries(allFlags(definition))) {
      good.push([`--${name}`])
      if (spec.char) good.push([`-${spec.char}`])
      if (spec.type === 'boolean') {
        if (spec.allowNo) good.push([`--no-${name}`])
        continue
      }
      const fine = spec.type === 'integer' ? ['0', '5', '600'] : spec.options ? [...spec.options] : ['x:1', '/srv/repo', 'linux/amd64']
      for (const value of fine) good.push([`--${name}`, value], [`--${name}=${value}`])
      for (const value of ['', '-1', 'maybe', '--json', '-q', 'true']) odd.push([`--${name}`, value], [`--${name}=${value}`])
    }
    return {good, odd}
  }

  /** A small deterministic PRNG (mulberry32), so a failure names a reproducible command line. */
  function prng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }

  it.each(Object.keys(DEFINITIONS))('%s: on 1000 random command lines, parses as oclif does or leaves them to oclif', async (id) => {
    const definition = DEFINITIONS[id]!
    const {good, odd} = vocabulary(definition)
    const random = prng(id.length * 7919 + id.charCodeAt(0))
    const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!
    const hasArgs = Object.keys(definition.args ?? {}).length > 0
    let taken = 0
    for (let n = 0; n < 1000; n++) {
      const pieces = Array.from({length: Math.floor(random() * 6)}, () => (random() < 0.15 ? pick(odd) : pick(good)))
      // Most lines of a command that takes arguments have one.
      if (hasArgs && random() < 0.85) pieces.splice(Math.floor(random() * (pieces.length + 1)), 0, [pick(['x:1', 'b:2', 'x:1', '/w.yaml'])])
      const argv = pieces.flat()
      const fast = parseArgv(definition, argv, () => true)
      if (fast === undefined) continue
      taken++
      expect(fast, JSON.stringify(argv)).toStrictEqual(await oclifParse(id, argv))
    }
    // Enough of them are taken for the comparison to mean something.
    expect(taken).toBeGreaterThan(50)
  })
})

describe('the CLI with and without the fast path', () => {
  const dir = useTempDir('cvmfs-oci-fast-run-', 'all')
  let repo: string

  beforeAll(async () => {
    repo = join(dir(), 'repo')
    const layout = join(dir(), 'layout')
    await writeOciLayout(layout, [{tag: '1', image: {layers: [{entries: busyboxLayer()}], config: {Env: ['PATH=/bin']}}}])
    const published = await cli(['publish', '--root', repo, '--name', 'example.org/fast/busybox:1', `oci:${layout}:1`])
    expect(published.exitCode, published.stderr).toBe(0)
    await mkdir(join(dir(), 'hooks'))
    await writeFile(join(dir(), 'hooks', 'good.json'), JSON.stringify({version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['precreate']}))
    await writeFile(join(dir(), 'hooks', 'bad.json'), '{"version": "1.0.0", "hook": {"path": "/bin/true"}, "stages": ["precreate"], "when": {"commands": ["("]}}')
    await writeFile(join(dir(), 'wishlist.yaml'), 'version: 1\ncvmfs_repo: x.example.org\ninput: [12\n')
  })

  const CASES: [string, (d: string, r: string) => string[], Record<string, string>?][] = [
    ['list', (_, r) => ['list', '--root', r]],
    ['list --json', (_, r) => ['list', '--json', '--root', r]],
    ['list, JSON by CVMFS_OCI_CONTENT_TYPE', (_, r) => ['list', '--root', r], {CVMFS_OCI_CONTENT_TYPE: 'json'}],
    ['list of a missing root', (d) => ['list', '--root', join(d, 'none')]],
    ['rm of an image not published (exit 3)', (_, r) => ['rm', '--root', r, 'example.org/fast/none:1']],
    ['rm --json of an image not published', (_, r) => ['rm', '--json', '--root', r, 'example.org/fast/none:1']],
    ['rm --ignore', (_, r) => ['rm', '--ignore', '--root', r, 'example.org/fast/none:1']],
    ['gc --dry-run', (_, r) => ['gc', '--dry-run', '--root', r]],
    ['gc --dry-run --json', (_, r) => ['gc', '--dry-run', '--json', '--root', r]],
    ['gc with a bad duration (an error of ours in run)', (_, r) => ['gc', '--dry-run', '--grace-period', 'soon', '--root', r]],
    ['gc --json with a bad duration', (_, r) => ['gc', '--dry-run', '--json', '--grace-period', 'soon', '--root', r]],
    ['sync of a broken wish list', (d, r) => ['sync', '--dry-run', '--root', r, join(d, 'wishlist.yaml')]],
    ['hook validate (an error in a file: exit 4)', (d) => ['hook', 'validate', join(d, 'hooks')]],
    ['hook validate --json', (d) => ['hook', 'validate', '--json', join(d, 'hooks')]],
    ['hook install of a missing program', (d) => ['hook', 'install', '--hooks-dir', join(d, 'hooks-new'), '--program', join(d, 'none')]],
    ['hook uninstall of nothing', (d) => ['hook', 'uninstall', '--hooks-dir', join(d, 'hooks-none')]],
    ['podman configure --print', (_, r) => ['podman', 'configure', '--print', '--root', r]],
    ['publish from a registry that is not there', (_, r) => ['publish', '--root', r, '--tls-verify=false', '127.0.0.1:1/none/such:1']],
    ['publish --json from a registry that is not there', (_, r) => ['publish', '--json', '--root', r, '--tls-verify=false', '127.0.0.1:1/none/such:1']],
    ['a bad flag value (left to oclif)', (_, r) => ['gc', '--dry-run', '--batch-size', '0', '--root', r]],
  ]

  it.each(CASES)('%s', async (_, argv, env = {}) => {
    const args = argv(dir(), repo)
    const fast = await cli(args, {env})
    const viaOclif = await cli(args, {env: {...env, CVMFS_OCI_NO_FAST_PATH: '1'}})
    expect({stdout: fast.stdout, stderr: fast.stderr, exitCode: fast.exitCode}).toStrictEqual({stdout: viaOclif.stdout, stderr: viaOclif.stderr, exitCode: viaOclif.exitCode})
    // Not trivially equal: each case prints something.
    expect(fast.stdout + fast.stderr).not.toBe('')
  })
})

/**
 * `hook validate` judged by podman itself: each kind of hook-file problem validate knows
 * is put beside our hook (`hook install`) in a hooks directory, and real podman runs a
 * `--rootfs` container of a published image with `--hooks-dir` there. validate's verdict
 * on the directory must be what podman did: an error exactly where podman refused to
 * start the container; otherwise our hook ran (the image's Env is there), and the other
 * hook ran or did not, as validate's warnings say ("skips" or "runs").
 */
import {chmod, copyFile, mkdir, stat, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {HOOK_PROBLEM_EFFECTS, type HookFileReport, type PodmanEffect} from '../../src/hook/hook-file.js'
import {cli, cliOk} from '../helpers/cli.js'
import {busyboxLayer} from '../helpers/busybox.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, type IsolatedPodman} from '../helpers/podman.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

/** Where a case's files go: its hooks directory and a hook program that leaves a mark when it runs. */
interface Place {
  hooks: string
  /** An executable that records its run in `ran` and passes its stdin on (a precreate hook must). */
  recorder: string
  dir: string
}

interface Case {
  what: string
  /** The other hook file's content (an object is written as JSON), as 10-other.json … */
  file?: (place: Place) => unknown
  /** … or files made some other way. */
  make?: (place: Place) => Promise<void>
  /** A second hooks directory, given to podman and validate after ours (it may not exist). */
  secondDir?: (place: Place) => string
  /** A file validate must find nothing wrong with (podman must run its hook). */
  clean?: boolean
}

const hook = (place: Place, fields: Record<string, unknown> = {}) => ({
  version: '1.0.0',
  hook: {path: place.recorder},
  when: {always: true},
  stages: ['precreate'],
  ...fields,
})

const CASES: Case[] = [
  {what: 'bad JSON', file: () => '{"version": "1.0.0",'},
  {what: 'a JSON array', file: () => '[]'},
  {what: 'null', file: () => 'null'},
  {what: 'a directory named *.json', make: async (p) => mkdir(join(p.hooks, '10-other.json'))},
  {what: 'a dangling symlink named *.json', make: async (p) => symlink(join(p.dir, 'nothing.json'), join(p.hooks, '10-other.json'))},
  {what: 'a hooks directory that does not exist', secondDir: (p) => join(p.dir, 'no-such-hooks.d')},
  {what: 'no version, a 1.0.0 body', file: (p) => ({hook: {path: p.recorder}, when: {always: true}, stages: ['precreate']})},
  {what: 'a legacy 0.1.0 file', file: (p) => ({hook: p.recorder, stage: ['prestart'], cmds: ['.*']})},
  {what: 'an unknown version', file: (p) => hook(p, {version: '2.0.0'})},
  {what: 'a value of the wrong type', file: (p) => hook(p, {when: {always: 'yes'}})},
  {what: 'stages not a list', file: (p) => hook(p, {stages: 'precreate'})},
  {what: 'no hook', file: (p) => ({version: '1.0.0', when: {always: true}, stages: ['precreate']})},
  {what: 'an empty hook.path', file: (p) => hook(p, {hook: {path: ''}})},
  {what: 'no stages', file: (p) => ({version: '1.0.0', hook: {path: p.recorder}, when: {always: true}})},
  {what: 'an unknown property', file: (p) => hook(p, {extra: 1})},
  {what: 'an unknown property in when', file: (p) => hook(p, {when: {always: true, sometimes: true}})},
  {what: 'an env entry without =', file: (p) => hook(p, {hook: {path: p.recorder, env: ['FOO']}})},
  {what: 'a relative hook.path', file: () => ({version: '1.0.0', hook: {path: 'true'}, when: {always: true}, stages: ['precreate']})},
  {what: 'a hook.path that does not exist', file: (p) => hook(p, {hook: {path: join(p.dir, 'no-such-program')}})},
  {what: 'a hook.path through a file', file: (p) => hook(p, {hook: {path: join(p.recorder, 'x')}})},
  {what: 'a bad command regex', file: (p) => hook(p, {when: {commands: ['(unclosed']}})},
  {what: 'a lookahead, which RE2 refuses', file: (p) => hook(p, {when: {commands: ['(?=x)']}})},
  {what: 'a bad annotation regex', file: (p) => hook(p, {when: {annotations: {'(': 'x'}}})},
  {what: 'an unknown stage', file: (p) => hook(p, {stages: ['prestrat']})},
  {what: 'an empty when', file: (p) => hook(p, {when: {}})},
  {what: 'no when', file: (p) => ({version: '1.0.0', hook: {path: p.recorder}, stages: ['precreate']})},
  {what: 'always false', file: (p) => hook(p, {when: {always: false}})},
  {what: 'hasBindMounts false', file: (p) => hook(p, {when: {hasBindMounts: false}})},
  {what: 'a when of unknown keys only', file: (p) => hook(p, {when: {annotation: {'(': 'x'}}})},
  {what: 'an empty stage list', file: (p) => hook(p, {stages: []})},
  {what: 'a directory as hook.path', file: (p) => hook(p, {hook: {path: p.dir}})},
  {
    what: 'a hook.path without execute bits',
    make: async (p) => {
      await copyFile(p.recorder, join(p.dir, 'not-executable.sh'))
      await chmod(join(p.dir, 'not-executable.sh'), 0o644)
      await writeFile(join(p.hooks, '10-other.json'), JSON.stringify(hook(p, {hook: {path: join(p.dir, 'not-executable.sh')}})))
    },
  },
  {what: 'a timeout of 0 at precreate (podman runs it)', file: (p) => hook(p, {hook: {path: p.recorder, timeout: 0}})},
  {what: 'a negative timeout at prestart (runc runs it)', file: (p) => hook(p, {hook: {path: p.recorder, timeout: -1}, stages: ['prestart']})},
  {what: 'an unknown stage, while hook.path does not exist', file: (p) => hook(p, {hook: {path: join(p.dir, 'no-such-program')}, stages: ['prestrat']})},
  {what: 'a bad regex, while hook.path does not exist', file: (p) => hook(p, {hook: {path: join(p.dir, 'no-such-program')}, when: {commands: ['(']}})},
  {what: 'a directory as hook.path, in a hook that never matches', file: (p) => hook(p, {hook: {path: p.dir}, when: {always: false}})},
  {what: 'an unknown stage, in a hook that never matches', file: (p) => hook(p, {when: {}, stages: ['prestrat']})},
  {what: 'a wrong type, while hook.path does not exist', file: (p) => hook(p, {hook: {path: join(p.dir, 'no-such-program')}, when: {always: 'x'}})},
  {what: 'keys in other cases (When, PATH, Stages)', clean: true, file: (p) => ({Version: '1.0.0', hook: {PATH: p.recorder}, When: {ALWAYS: true}, Stages: ['precreate']})},
  {what: 'null where Go leaves the default', clean: true, file: (p) => hook(p, {when: {always: null, commands: ['.*']}})},
]

/** What podman did: refused to start, or started with or without the other hook. */
function podmanDid(exitCode: number, otherRan: boolean): PodmanEffect {
  if (exitCode !== 0) return 'refuses'
  return otherRan ? 'runs' : 'skips'
}

/** validate's verdict on the other files: an error is a refusal, else a skipped hook wins over one that runs. */
function validateSays(reports: HookFileReport[]): PodmanEffect {
  const problems = reports.flatMap((r) => r.problems)
  if (problems.some((p) => p.severity === 'error')) return 'refuses'
  return problems.some((p) => p.podman === 'skips') ? 'skips' : 'runs'
}

const exists = (path: string) => stat(path).then(() => true, () => false)

describe('hook validate says what podman does', () => {
  const work = useTempDir('cvmfs-oci-hook-validate-', 'all')
  let podman: IsolatedPodman
  let rootfs: string
  const kindsSeen = new Set<string>()

  beforeAll(async () => {
    requireTools('podman', 'runc', 'skopeo', 'busybox')
    const layout = join(work(), 'layout')
    await writeOciLayout(layout, [{tag: '1', image: {layers: [{entries: busyboxLayer()}], config: {Env: ['PATH=/bin', 'FOO=from-the-image'], Cmd: ['/bin/sh']}}}])
    const repo = join(work(), 'repo')
    await cliOk(['publish', '--root', repo, '--name', 'localhost/hook-validate/busybox:1', `oci:${layout}:1`])
    rootfs = (await cliOk(['resolve', '--root', repo, 'localhost/hook-validate/busybox:1'])).trim()
    // Our hook file, as `hook install` writes it; each case's hooks directory gets a copy.
    await cliOk(['hook', 'install', '--hooks-dir', join(work(), 'installed.d')])
    podman = await isolatedPodman()
  })
  afterAll(async () => {
    await podman?.cleanup()
  })

  /** A hooks directory holding our hook, and a recorder beside it. */
  async function place(name: string): Promise<Place> {
    const dir = join(work(), 'cases', name)
    const hooks = join(dir, 'hooks.d')
    await mkdir(hooks, {recursive: true})
    await copyFile(join(work(), 'installed.d', 'cvmfs-oci.json'), join(hooks, 'cvmfs-oci.json'))
    const recorder = join(dir, 'record.sh')
    await writeFile(recorder, `#!/bin/sh\necho ran >> ${join(dir, 'ran')}\ncat\n`)
    await chmod(recorder, 0o755)
    return {hooks, recorder, dir}
  }

  /** A container of the published image (through :O, so nothing writes into the repository), printing the image's FOO. */
  const runContainer = (hooksDirs: string[]) =>
    podman.run(['run', '--rm', ...hooksDirs.flatMap((d) => ['--hooks-dir', d]), '--rootfs', `${rootfs}:O`, '/bin/sh', '-c', 'echo "FOO=$FOO"'])

  it('runs a container with our hook alone, which gives it the image Env', async () => {
    const p = await place('control')
    const result = await runContainer([p.hooks])
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stdout).toBe('FOO=from-the-image\n')
    expect((await cli(['hook', 'validate', p.hooks])).exitCode).toBe(0)
  })

  it.each(CASES.map((c, i) => [c.what, i, c] as const))('%s', async (_what, index, c) => {
    const p = await place(String(index))
    if (c.file) {
      const content = c.file(p)
      await writeFile(join(p.hooks, '10-other.json'), typeof content === 'string' ? content : JSON.stringify(content))
    }
    await c.make?.(p)
    const dirs = [p.hooks, ...(c.secondDir ? [c.secondDir(p)] : [])]

    const container = await runContainer(dirs)
    const did = podmanDid(container.exitCode, await exists(join(p.dir, 'ran')))
    if (did === 'refuses') expect(container.stderr).toMatch(/hook/i)
    // Wherever podman starts the container, our hook ran in it.
    else expect(container.stdout, container.stderr).toBe('FOO=from-the-image\n')

    const validated = await cli(['hook', 'validate', '--json', ...dirs])
    const {files} = JSON.parse(validated.stdout) as {files: HookFileReport[]}
    const ours = files.filter((f) => f.file.endsWith('/cvmfs-oci.json'))
    const others = files.filter((f) => !f.file.endsWith('/cvmfs-oci.json'))
    expect(ours.map((f) => f.problems)).toEqual([[]])
    for (const problem of others.flatMap((f) => f.problems)) kindsSeen.add(problem.kind)
    if (c.clean) expect(others.flatMap((f) => f.problems)).toEqual([])
    else expect(others.flatMap((f) => f.problems).length).toBeGreaterThan(0)

    expect({validate: validateSays(others), exitCode: validated.exitCode}).toEqual({validate: did, exitCode: did === 'refuses' ? 4 : 0})
  })

  it('covered every kind of problem validate knows', () => {
    expect([...kindsSeen].sort()).toEqual(Object.keys(HOOK_PROBLEM_EFFECTS).sort())
  })
})

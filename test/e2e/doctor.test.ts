/**
 * `cvmfs-oci doctor` on a node set up in a temp dir, with the real podman, skopeo and
 * setfattr: healthy, it exits 0; with a broken hook file, a missing repository, a
 * missing image store and an old podman stubbed on PATH, it names each problem and
 * exits 1. podman's configuration is pointed at files of the test's own
 * (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), as podman itself reads them.
 */
import {chmod, mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import type {DoctorReport, Finding} from '../../src/doctor/report.js'
import {ExitCode} from '../../src/errors.js'
import {runnableImage} from '../helpers/busybox.js'
import {cli, cliOk} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {CONTAINERS_CONF_FROM_DOC} from '../helpers/podman.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

describe('cvmfs-oci doctor', () => {
  const work = useTempDir('cvmfs-oci-doctor-', 'all')
  let repo: string
  let hooks: string
  let env: Record<string, string>

  /** Files of a node: config.json roots, storage.conf image stores, containers.conf hooks_dir. */
  async function node(dir: string, options: {roots: string[]; stores: string[]; hooksDir: string}): Promise<Record<string, string>> {
    await mkdir(dir, {recursive: true})
    await writeFile(join(dir, 'config.json'), JSON.stringify({roots: options.roots}))
    // podman reads storage.conf even for --version, and wants its roots set there.
    const storage = [
      '[storage]',
      'driver = "overlay"',
      `graphroot = ${JSON.stringify(join(dir, 'graphroot'))}`,
      `runroot = ${JSON.stringify(join(dir, 'runroot'))}`,
      '',
      '[storage.options]',
      `additionalimagestores = ${JSON.stringify(options.stores)}`,
      '',
    ]
    await writeFile(join(dir, 'storage.conf'), storage.join('\n'))
    await writeFile(join(dir, 'containers.conf'), `${CONTAINERS_CONF_FROM_DOC}hooks_dir = [${JSON.stringify(options.hooksDir)}]\n`)
    return {
      CVMFS_OCI_CONFIG: join(dir, 'config.json'),
      CVMFS_OCI_ROOTS: '',
      CONTAINERS_CONF: join(dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    }
  }

  async function doctorJson(args: string[], extraEnv: Record<string, string>): Promise<{exitCode: number; report: DoctorReport}> {
    const result = await cli(['doctor', '--json', ...args], {env: extraEnv})
    return {exitCode: result.exitCode, report: JSON.parse(result.stdout) as DoctorReport}
  }

  const byCheck = (report: DoctorReport, check: Finding['check']) => report.findings.filter((f) => f.check === check)

  beforeAll(async () => {
    requireTools('podman', 'skopeo', 'setfattr', 'flock', 'busybox')
    repo = join(work(), 'repo')
    const layout = join(work(), 'layout')
    await writeOciLayout(layout, [{tag: '1', image: runnableImage()}])
    await cliOk(['publish', '--root', repo, '--name', 'localhost/doctor/busybox:1', `oci:${layout}:1`])
    // The repository carries a podman image store (publish keeps one in step, as DUCC does).
    await mkdir(join(repo, 'podmanStore'), {recursive: true})
    hooks = join(work(), 'hooks.d')
    await cliOk(['hook', 'install', '--hooks-dir', hooks])
    // Another hook file, valid: doctor checks every file podman reads.
    await writeFile(join(hooks, '50-other.json'), JSON.stringify({version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['prestart']}))
    env = await node(join(work(), 'healthy'), {roots: [repo], stores: [join(repo, 'podmanStore')], hooksDir: hooks})
  })

  it('exits 0 on a healthy node and says so for every check', async () => {
    const result = await cli(['doctor'], {env})
    expect(result.exitCode, result.stderr).toBe(0)
    expect(result.stderr).toMatch(/^ok +Node\.js +Node\.js v\d+/m)
    expect(result.stderr).toMatch(/^ok +podman +podman \d+\.\d+\.\d+: precreate hooks \(since 1\.0\.0\), --rootfs DIR:O \(since 3\.4\.0\)$/m)
    expect(result.stderr).toContain(`${join(hooks, 'cvmfs-oci.json')}: the cvmfs-oci hook (precreate) runs`)

    const {exitCode, report} = await doctorJson([], env)
    expect(exitCode).toBe(0)
    expect(report).toMatchObject({ok: true, problems: 0})
    for (const check of ['node', 'podman', 'hooks', 'config', 'repositories', 'storage', 'publishing'] as const) {
      expect(byCheck(report, check).length, check).toBeGreaterThan(0)
    }
    expect(byCheck(report, 'hooks')).toEqual([
      expect.objectContaining({status: 'ok', message: expect.stringContaining(join(hooks, 'cvmfs-oci.json'))}),
      {check: 'hooks', status: 'ok', message: '1 other hook file valid'},
    ])
    expect(byCheck(report, 'repositories')).toContainEqual(expect.objectContaining({status: 'ok', message: expect.stringContaining(`${repo}: mounted, readable`)}))
    expect(byCheck(report, 'storage')).toEqual([expect.objectContaining({status: 'ok', message: expect.stringContaining(`lists ${join(repo, 'podmanStore')}`)})])
    expect(byCheck(report, 'publishing').map((f) => f.status)).toEqual(['ok', 'ok', 'ok'])
  })

  it('names each problem of a broken node and exits 1', async () => {
    const broken = join(work(), 'broken')
    const brokenHooks = join(broken, 'hooks.d')
    await mkdir(brokenHooks, {recursive: true})
    await cliOk(['hook', 'install', '--hooks-dir', brokenHooks])
    // A hook file podman refuses (a stage it does not know): every container start fails.
    await writeFile(join(brokenHooks, '10-broken.json'), JSON.stringify({version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['pre-start']}))
    // An old podman, stubbed first on PATH.
    const stubs = join(broken, 'bin')
    await mkdir(stubs)
    await writeFile(join(stubs, 'podman'), '#!/bin/sh\necho "podman version 3.0.1"\n')
    await chmod(join(stubs, 'podman'), 0o755)
    const missingRepo = join(broken, 'not-mounted')
    const missingStore = join(broken, 'gone', 'podmanStore')
    const brokenEnv: Record<string, string> = {
      ...(await node(broken, {roots: [repo, missingRepo], stores: [missingStore], hooksDir: brokenHooks})),
      PATH: `${stubs}:${process.env.PATH}`,
    }

    const result = await cli(['doctor'], {env: brokenEnv})
    expect(result.exitCode, result.stderr).toBe(ExitCode.Failure)
    expect(result.stderr).toMatch(/^problem +podman +podman 3\.0\.1 is too old for --rootfs DIR:O \(podman >= 3\.4\.0\)/m)
    expect(result.stderr).toMatch(new RegExp(`^problem +OCI hooks +${join(brokenHooks, '10-broken.json')}: .*unknown stage.*podman refuses to start any container`, 'm'))
    expect(result.stderr).toMatch(new RegExp(`^problem +repositories +${missingRepo} does not exist \\(not mounted\\?\\)`, 'm'))
    expect(result.stderr).toMatch(new RegExp(`^problem +storage\\.conf +.*lists the additional image store ${missingStore}, which is not there`, 'm'))
    expect(result.stderr).toMatch(/^4 problems, \d+ warnings?: this node cannot run cvmfs-oci images as it should$/m)

    const {exitCode, report} = await doctorJson([], brokenEnv)
    expect(exitCode).toBe(ExitCode.Failure)
    expect(report.ok).toBe(false)
    const problems = report.findings.filter((f) => f.status === 'problem')
    expect(problems.map((f) => f.check).sort()).toEqual(['hooks', 'podman', 'repositories', 'storage'])
    for (const problem of problems) expect(problem.fix, problem.message).toBeTruthy()
    // The store of the healthy repository is not listed in this node's storage.conf.
    expect(byCheck(report, 'storage')).toContainEqual({
      check: 'storage',
      status: 'warning',
      message: expect.stringContaining(`${join(repo, 'podmanStore')} is not in additionalimagestores`),
      fix: `cvmfs-oci podman configure --root ${repo} --storage-conf ${brokenEnv.CONTAINERS_STORAGE_CONF}`,
    })
    // Our own hook is still fine; the broken file is named, not ours.
    expect(byCheck(report, 'hooks')).toContainEqual(expect.objectContaining({status: 'ok', message: expect.stringContaining(join(brokenHooks, 'cvmfs-oci.json'))}))
  })

  it('names a missing hook and a hook whose program is gone, and --hooks-dir overrides containers.conf', async () => {
    const empty = join(work(), 'empty-hooks.d')
    await mkdir(empty)
    let {exitCode, report} = await doctorJson(['--hooks-dir', empty], env)
    expect(exitCode).toBe(ExitCode.Failure)
    expect(byCheck(report, 'hooks')).toEqual([
      expect.objectContaining({status: 'problem', message: expect.stringContaining(`the cvmfs-oci hook is not installed in ${empty} (given with --hooks-dir)`), fix: expect.stringContaining('cvmfs-oci hook install')}),
    ])

    const gone = join(work(), 'gone-hooks.d')
    await mkdir(gone)
    await writeFile(join(gone, 'cvmfs-oci.json'), JSON.stringify({version: '1.0.0', hook: {path: process.execPath, args: ['node', join(work(), 'no-such-program.js')]}, when: {always: true}, stages: ['precreate']}))
    ;({exitCode, report} = await doctorJson(['--hooks-dir', gone], env))
    expect(exitCode).toBe(ExitCode.Failure)
    expect(byCheck(report, 'hooks')).toEqual([
      expect.objectContaining({status: 'problem', message: `${join(gone, 'cvmfs-oci.json')} runs ${join(work(), 'no-such-program.js')}, which does not exist: every container start fails`}),
    ])
  })

  it('calls a hook file podman only skips a warning, and our hook skipped a problem', async () => {
    // podman 4.3 starts containers beside a hook whose path is relative; it skips that hook (hook validate's e2e test shows it).
    const relative = join(work(), 'relative-hooks.d')
    await mkdir(relative)
    await cliOk(['hook', 'install', '--hooks-dir', relative])
    await writeFile(join(relative, '20-relative.json'), JSON.stringify({version: '1.0.0', hook: {path: 'true'}, when: {always: true}, stages: ['prestart']}))
    let {exitCode, report} = await doctorJson(['--hooks-dir', relative], env)
    expect(byCheck(report, 'hooks')).toEqual([
      expect.objectContaining({status: 'ok', message: expect.stringContaining(join(relative, 'cvmfs-oci.json'))}),
      {check: 'hooks', status: 'warning', message: expect.stringMatching(new RegExp(`^${join(relative, '20-relative.json')}: hook.path "true" is relative: .*skips the hook`))},
    ])
    expect(exitCode).toBe(0)

    // Our own file without "when": podman loads it and never runs it.
    const idle = join(work(), 'idle-hooks.d')
    await mkdir(idle)
    await cliOk(['hook', 'install', '--hooks-dir', idle])
    const ours = JSON.parse(await readFile(join(idle, 'cvmfs-oci.json'), 'utf8')) as Record<string, unknown>
    delete ours.when
    await writeFile(join(idle, 'cvmfs-oci.json'), JSON.stringify(ours))
    ;({exitCode, report} = await doctorJson(['--hooks-dir', idle], env))
    expect(exitCode).toBe(ExitCode.Failure)
    expect(byCheck(report, 'hooks')).toEqual([
      expect.objectContaining({status: 'problem', message: expect.stringMatching(/cvmfs-oci\.json: no "when": podman never runs the hook.*: --rootfs containers get podman's defaults$/), fix: expect.stringContaining('cvmfs-oci hook install')}),
    ])
  })

  it('names podman missing from PATH, a broken configuration file and a repository that publishes nothing', async () => {
    const dir = join(work(), 'bare')
    await mkdir(join(dir, 'bin'), {recursive: true})
    const nothing = join(dir, 'empty-repo')
    await mkdir(nothing)
    const bareEnv: Record<string, string> = {...(await node(dir, {roots: [nothing], stores: [], hooksDir: hooks})), CVMFS_OCI_ROOTS: nothing, PATH: join(dir, 'bin')}
    let {report} = await doctorJson([], bareEnv)
    expect(byCheck(report, 'podman')).toEqual([expect.objectContaining({status: 'problem', message: 'podman is not installed (or not on PATH)'})])
    expect(byCheck(report, 'publishing').map((f) => f.status)).toEqual(['warning', 'warning', 'warning'])
    expect(byCheck(report, 'repositories')).toContainEqual(expect.objectContaining({status: 'warning', message: `${nothing} is readable but holds no published images (no .flat/)`}))

    const config = bareEnv.CVMFS_OCI_CONFIG!
    await writeFile(config, '{"roots": "not a list"}')
    ;({report} = await doctorJson([], bareEnv))
    expect(byCheck(report, 'config')).toEqual([expect.objectContaining({status: 'problem', message: expect.stringContaining(`configuration file ${config} is not a valid configuration`)})])
    // The other roots are still looked at.
    expect(byCheck(report, 'repositories')).toContainEqual(expect.objectContaining({message: expect.stringContaining(nothing)}))
  })
})

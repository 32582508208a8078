/**
 * The RPM, built in the suite by scripts/build-rpm.mjs (rpmbuild, offline, from this
 * checkout, with an empty npm cache and no registry): it holds exactly the intended files, rpmlint finds no error, and unpacked
 * (rpm2cpio | cpio) into a temp root it works as installed: its cvmfs-oci runs, publishes
 * and resolves, its hook file passes `hook validate`, and podman with --hooks-dir at the
 * unpacked hooks directory (only the absolute prefix adjusted) runs a published image with
 * the image's Env, WorkingDir and User. Its bash completion and man page work too.
 */
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {gunzipSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {DoctorReport} from '../../src/doctor/report.js'
import {busyboxLayer} from '../helpers/busybox.js'
import {TOP} from '../helpers/cli.js'
import {exec, execBuffer, type ExecResult} from '../helpers/exec.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools, whichTool} from '../helpers/tools.js'

/** The programs this file drives and the Debian package of each (scripts/setup.sh installs them). */
const RPM_TOOLS: Record<string, string> = {rpmbuild: 'rpm', rpm: 'rpm', rpmlint: 'rpmlint', rpm2cpio: 'rpm2cpio', cpio: 'cpio', groff: 'groff-base', bash: 'bash'}

function requireRpmTools(): void {
  const missing = Object.entries(RPM_TOOLS).filter(([tool]) => whichTool(tool) === undefined)
  if (missing.length) throw new Error(missing.map(([tool, pkg]) => `${tool} not found on PATH: install the Debian package ${pkg} (see scripts/setup.sh)`).join('\n'))
}

const APP = '/usr/lib/cvmfs-oci'
const HOOK_PROGRAM = '/usr/libexec/cvmfs-oci/cvmfs-oci-hook'
const HOOK_FILE = '/usr/share/containers/oci/hooks.d/cvmfs-oci.json'

/** Warnings rpmlint may give, each explained at the top of packaging/cvmfs-oci.spec. */
const EXPLAINED_WARNINGS = ['no-url-tag', 'only-non-binary-in-usr-lib', 'invalid-license', 'no-manual-page-for-binary', 'manpage-not-compressed', 'files-duplicate']

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) yield* walk(path)
    else yield path
  }
}

/** A path and every directory above it, up to (and including) `top`. */
function withParents(path: string, top: string): string[] {
  const out = [path]
  for (let dir = path.slice(0, path.lastIndexOf('/')); dir.length >= top.length; dir = dir.slice(0, dir.lastIndexOf('/'))) out.push(dir)
  return out
}

describe('the RPM', () => {
  const work = useTempDir('cvmfs-oci-rpm-e2e-', 'all')
  let rpm: string
  let files: string[]
  let root: string

  /**
   * The unpacked package's cvmfs-oci, run by the node under test, in a worker node's
   * environment: vitest's NODE_ENV=test would make oclif look for TypeScript sources,
   * which the package does not ship (it warns, then runs the compiled ones).
   */
  const unpacked = (args: string[], env: Record<string, string> = {}): Promise<ExecResult> =>
    exec(process.execPath, [join(root, 'usr/bin/cvmfs-oci'), ...args], {
      reject: false,
      env: {NODE_ENV: 'production', CVMFS_OCI_CONFIG: '/nonexistent/config.json', CVMFS_OCI_ROOTS: '', ...env},
    })

  beforeAll(async () => {
    requireRpmTools()
    // As on an offline build host whose npm cache holds nothing (not even what `npm ci`
    // put there): an empty cache of its own and a registry nothing answers at.
    await mkdir(join(work(), 'npm-cache'))
    const built = await exec(process.execPath, [join(TOP, 'scripts/build-rpm.mjs'), '--output', join(work(), 'out')], {
      timeoutMs: 600_000,
      env: {npm_config_cache: join(work(), 'npm-cache'), npm_config_registry: 'http://127.0.0.1:9/', npm_config_offline: 'true'},
    })
    rpm = built.stdout.trim().split('\n').at(-1)!
    expect(rpm).toBe(join(work(), 'out', 'cvmfs-oci-0.1.0-1.noarch.rpm'))
    files = (await exec('rpm', ['-qlp', rpm])).stdout.trim().split('\n')
    root = join(work(), 'root')
    await mkdir(root)
    const cpio = await execBuffer('rpm2cpio', [rpm])
    await exec('cpio', ['-idm', '--quiet', '--no-absolute-filenames'], {cwd: root, input: cpio})
  }, 600_000)

  it('is noarch, needs nodejs >= 1:20, recommends podman, skopeo, attr and util-linux (flock), and keeps a changed config.json', async () => {
    expect((await exec('rpm', ['-qp', '--qf', '%{ARCH}', rpm])).stdout).toBe('noarch')
    const requires = (await exec('rpm', ['-qpR', rpm])).stdout.trim().split('\n')
    expect(requires).toContain('nodejs >= 1:20')
    // Only node itself, named by the shebangs of our own entries: nothing from node_modules.
    expect(requires.filter((r) => !r.startsWith('rpmlib(') && !r.startsWith('config('))).toEqual(['/usr/bin/node', 'nodejs >= 1:20'])
    expect((await exec('rpm', ['-qp', '--recommends', rpm])).stdout.trim().split('\n').sort()).toEqual(['attr', 'podman', 'skopeo', 'util-linux'])
    const flags = (await exec('rpm', ['-qp', '--qf', '[%{FILEFLAGS:fflags} %{FILENAMES}\n]', rpm])).stdout
    expect(flags).toContain('cn /etc/cvmfs-oci/config.json\n')
    const provides = (await exec('rpm', ['-qp', '--provides', rpm])).stdout
    expect(provides).toMatch(/^bundled\(nodejs-@oclif\/core\) = \d/m)
  })

  it('holds exactly the intended files', async () => {
    const expected = new Set<string>([
      '/etc/cvmfs-oci',
      '/etc/cvmfs-oci/config.json',
      '/usr/bin/cvmfs-oci',
      '/usr/libexec/cvmfs-oci',
      HOOK_PROGRAM,
      HOOK_FILE,
      '/usr/share/bash-completion/completions/cvmfs-oci',
      '/usr/share/doc/cvmfs-oci',
      '/usr/share/doc/cvmfs-oci/README.md',
      '/usr/share/licenses/cvmfs-oci',
      '/usr/share/licenses/cvmfs-oci/LICENSE',
      '/usr/share/licenses/cvmfs-oci/bundled-licenses.txt',
      '/usr/share/man/man1/cvmfs-oci.1.gz',
      `${APP}/package.json`,
      `${APP}/oclif.manifest.json`,
      `${APP}/node_modules`,
    ])
    const add = (path: string) => withParents(path, APP).forEach((p) => expected.add(p))
    for (const dir of ['bin', 'hooks', 'schemas']) for await (const file of walk(join(TOP, dir))) add(`${APP}/${relative(TOP, file)}`)
    // dist/: what each source compiles to, nothing else (no stale file, no source map) …
    for await (const file of walk(join(TOP, 'src'))) if (file.endsWith('.ts')) add(`${APP}/dist/${relative(join(TOP, 'src'), file).replace(/\.ts$/, '.js')}`)
    // … and the bundles (scripts/bundle-hot-paths.mjs): the router's, resolve's, the hook's, each other command's, execa's.
    add(`${APP}/dist/cli/fast-paths.cjs`)
    add(`${APP}/dist/cli/resolve-main.cjs`)
    add(`${APP}/dist/hook/main.cjs`)
    add(`${APP}/dist/vendor/execa.cjs`)
    for (const file of await readdir(join(TOP, 'src/cli/definitions'))) add(`${APP}/dist/cli/definitions/${file.replace(/\.ts$/, '.cjs')}`)

    const outside = files.filter((f) => !f.startsWith(`${APP}/node_modules/`))
    expect(outside.filter((f) => !expected.has(f)), 'unexpected files').toEqual([])
    expect([...expected].filter((f) => !outside.includes(f)), 'missing files').toEqual([])
  })

  it('bundles exactly the production modules of package-lock.json, as Node.js loads them', async () => {
    const lock = JSON.parse(await readFile(join(TOP, 'package-lock.json'), 'utf8')) as {packages: Record<string, {dev?: boolean}>}
    const production = Object.entries(lock.packages)
      .filter(([path, entry]) => path.startsWith('node_modules/') && !entry.dev && existsSync(join(TOP, path)))
      .map(([path]) => `${APP}/${path}`)
      .sort()
    const bundled = files.filter((f) => /\/node_modules\/(@[^/]+\/)?[^/@]+$/.test(f) && files.includes(`${f}/package.json`)).sort()
    expect(bundled).toEqual(production)
    expect(bundled).not.toContain(`${APP}/node_modules/typescript`)
    expect(bundled).not.toContain(`${APP}/node_modules/vitest`)
    // No dotfiles, no TypeScript, no source maps, no native addons: rpmlint would flag them, Node.js never loads them.
    expect(files.filter((f) => /\/\.[^/]+/.test(f.slice(APP.length)) || /\.([cm]?ts|map)$/.test(f) || f.includes('/prebuilds/'))).toEqual([])
    const licences = await readFile(join(root, 'usr/share/licenses/cvmfs-oci/bundled-licenses.txt'), 'utf8')
    for (const module of production) {
      const pkg = JSON.parse(await readFile(join(root, module, 'package.json'), 'utf8')) as {name: string; version: string}
      expect(licences).toContain(`${pkg.name} ${pkg.version} (`)
    }
  })

  it('rpmlint finds no error, and every warning is one the spec explains', async () => {
    const spec = await readFile(join(TOP, 'packaging/cvmfs-oci.spec'), 'utf8')
    const lint = await exec('rpmlint', ['-r', join(TOP, 'packaging/cvmfs-oci.rpmlintrc'), rpm], {reject: false})
    const summary = /(\d+) errors, (\d+) warnings/.exec(lint.stdout)
    expect(summary, lint.stdout + lint.stderr).not.toBeNull()
    expect(Number(summary![1]), lint.stdout).toBe(0)
    const warnings = [...lint.stdout.matchAll(/^cvmfs-oci\.noarch: W: (\S+)/gm)].map((m) => m[1]!)
    expect(warnings.filter((w) => !EXPLAINED_WARNINGS.includes(w)), lint.stdout).toEqual([])
    for (const warning of EXPLAINED_WARNINGS) expect(spec).toMatch(new RegExp(`^# - ${warning}\\b`, 'm'))
  })

  it('its cvmfs-oci runs and its entries name node by absolute path', async () => {
    const version = await unpacked(['--version'])
    expect(version.exitCode, version.stderr).toBe(0)
    expect(version.stdout).toMatch(/^cvmfs-oci\/0\.1\.0 linux-x64 node-v\d+/)
    for (const entry of [`${APP}/bin/run.js`, `${APP}/bin/hook.js`, HOOK_PROGRAM]) {
      expect((await readFile(join(root, entry), 'utf8')).split('\n')[0], entry).toBe('#!/usr/bin/node')
    }
    const help = await unpacked(['--help'])
    expect(help.stdout).toContain('doctor')
  })

  it('its config.json is valid and doctor reads it', async () => {
    expect(JSON.parse(await readFile(join(root, 'etc/cvmfs-oci/config.json'), 'utf8'))).toMatchObject({roots: []})
    const doctor = await unpacked(['doctor', '--json', '--config', join(root, 'etc/cvmfs-oci/config.json')])
    const report = JSON.parse(doctor.stdout) as DoctorReport
    expect(report.findings.filter((f) => f.check === 'config')).toEqual([expect.objectContaining({status: 'ok', message: expect.stringContaining('valid, 0 roots')})])
  })

  it('its bash completion completes commands, topics and flags', async () => {
    const complete = async (line: string): Promise<string[]> => {
      const script = 'source "$1"; read -ra COMP_WORDS <<< "$2"; [[ $2 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cvmfs_oci; printf "%s\\n" "${COMPREPLY[@]}"'
      const result = await exec('bash', ['-c', script, 'complete', join(root, 'usr/share/bash-completion/completions/cvmfs-oci'), line])
      return result.stdout.split('\n').filter(Boolean)
    }
    expect(await complete('cvmfs-oci ')).toEqual(expect.arrayContaining(['doctor', 'hook', 'list', 'publish', 'resolve']))
    expect(await complete('cvmfs-oci ho')).toEqual(['hook'])
    expect(await complete('cvmfs-oci hook ')).toEqual(['install', 'uninstall', 'validate'])
    expect(await complete('cvmfs-oci --debug hook v')).toEqual(['validate'])
    expect(await complete('cvmfs-oci doctor --h')).toEqual(['--hooks-dir', '--help'])
    expect(await complete('cvmfs-oci list --root /srv --c')).toEqual(['--config'])
  })

  it('its man page renders without warnings and documents every command', async () => {
    const page = gunzipSync(await readFile(join(root, 'usr/share/man/man1/cvmfs-oci.1.gz'))).toString('utf8')
    const pagePath = join(work(), 'cvmfs-oci.1')
    await writeFile(pagePath, page)
    const groff = await exec('groff', ['-man', '-ww', '-z', pagePath], {env: {LC_ALL: 'C.UTF-8'}})
    expect(groff.stderr).toBe('')
    const manifest = JSON.parse(await readFile(join(root, APP, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    for (const id of Object.keys(manifest.commands)) expect(page).toContain(`.SS "cvmfs\\-oci ${id.replaceAll(':', ' ').replaceAll('-', '\\-')}`)
    expect(page).toMatch(/^\.SH EXIT STATUS$/m)
  })

  describe('under podman, hooks directory from the package', () => {
    let hooks: string
    let podman: IsolatedPodman
    let readonly: ReadonlyMount
    let rootfs: string

    beforeAll(async () => {
      requireTools('podman', 'runc', 'skopeo', 'busybox')
      // The package's hook file with only the absolute prefix adjusted: node is the one
      // under test (the package requires it, it does not ship it), the program the unpacked one.
      const shipped = JSON.parse(await readFile(join(root, HOOK_FILE), 'utf8')) as {hook: {path: string; args: string[]}}
      expect(shipped).toEqual({version: '1.0.0', hook: {path: '/usr/bin/node', args: ['node', HOOK_PROGRAM]}, when: {always: true}, stages: ['precreate']})
      hooks = join(work(), 'hooks.d')
      await mkdir(hooks)
      await writeFile(join(hooks, 'cvmfs-oci.json'), JSON.stringify({...shipped, hook: {path: process.execPath, args: ['node', join(root, HOOK_PROGRAM)]}}, null, 2))

      const layout = join(work(), 'layout')
      // The user by name: the hook looks it up in the image's /etc/passwd.
      const config = {Env: ['PATH=/bin', 'FROM_RPM=yes'], WorkingDir: '/home/user', User: 'user', Cmd: ['/bin/sh']}
      await writeOciLayout(layout, [{tag: '1', image: {layers: [{entries: busyboxLayer()}], config}}])
      const ref = await pushLayout(layout, '1', registryAddress(), 'e2e/rpm-hooked:1')
      // Published and resolved by the package's own cvmfs-oci: its production node_modules are enough.
      const published = await unpacked(['publish', '--root', join(work(), 'repo'), '--tls-verify=false', ref])
      expect(published.exitCode, published.stderr).toBe(0)
      readonly = await readonlyBindMount(join(work(), 'repo'))
      const resolved = await unpacked(['resolve', '--root', readonly.path, ref])
      expect(resolved.exitCode, resolved.stderr).toBe(0)
      rootfs = resolved.stdout.trim()
      podman = await isolatedPodman()
    })
    afterAll(async () => {
      await podman?.cleanup()
      await readonly?.unmount()
    })

    it('its hook file passes hook validate, as shipped and with the prefix adjusted', async () => {
      for (const file of [join(root, HOOK_FILE), join(hooks, 'cvmfs-oci.json')]) {
        const result = await unpacked(['hook', 'validate', file])
        expect(result.exitCode, result.stderr).toBe(0)
        expect(result.stderr).not.toMatch(/: error: /)
      }
      expect((await unpacked(['hook', 'validate', join(hooks, 'cvmfs-oci.json')])).stderr).toBe(`${join(hooks, 'cvmfs-oci.json')}: ok\n`)
    })

    it.each([
      ['read-only', ''],
      ['through :O', ':O'],
    ])("gives a --rootfs container (%s) its image's Env, WorkingDir and User", async (_, suffix) => {
      const result = await podman.run(['run', '--rm', '--hooks-dir', hooks, '--rootfs', `${rootfs}${suffix}`, '/bin/sh', '-c', 'echo "$FROM_RPM $PATH"; pwd; id -un'])
      expect(result.exitCode, result.stderr).toBe(0)
      expect(result.stdout).toBe('yes /bin\n/home/user\nuser\n')
    })

    it("the package's doctor finds its hook working", async () => {
      const doctor = await unpacked(['doctor', '--json', '--hooks-dir', hooks])
      const report = JSON.parse(doctor.stdout) as DoctorReport
      expect(report.findings.filter((f) => f.check === 'hooks')).toEqual([
        expect.objectContaining({status: 'ok', message: `${join(hooks, 'cvmfs-oci.json')}: the cvmfs-oci hook (precreate) runs ${join(root, HOOK_PROGRAM)} with Node.js ${process.version}`}),
      ])
    })
  })
})

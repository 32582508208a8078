/**
 * Start-up: `resolve` and the hook run before container starts, and every other command
 * should reach its own work about as fast as a bare `node -e 0` (bench/run.mjs measures
 * that; here the rule is checked exactly, never timed). Their bundles must not pull in
 * the heavy modules (oclif ~110 ms, execa ~125 ms, ajv's compiler ~80 ms to load), and a
 * real run of each command loads, before its first subprocess (or its end), only the
 * entry, the router and that command's one bundle: no ES module graph, nothing from
 * node_modules but what the list below allows. `npm test` builds first, so the bundles
 * are current.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join, relative} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {TOP} from '../helpers/cli.js'
import {writeDuccShapedImage} from '../helpers/ducc-shaped.js'
import {exec} from '../helpers/exec.js'
import {useTempDir} from '../helpers/temp-dir.js'

describe.each(['dist/cli/fast-paths.cjs', 'dist/cli/resolve-main.cjs', 'dist/hook/main.cjs'])('%s', (bundle) => {
  it('loads no heavy module', async () => {
    const text = await readFile(join(TOP, bundle), 'utf8')
    expect(text.length).toBeGreaterThan(1000)
    for (const heavy of ['@oclif/core', 'node_modules/execa', 'require("execa")', 'ajv/dist/core', 'ajv/dist/compile', 'tar-stream', 'tmp-promise']) {
      expect(text, heavy).not.toContain(heavy)
    }
  })

  // A bundle's import.meta.url is made at its first use (scripts/bundle-hot-paths.mjs), through
  // Node.js's URL code (resolve was 1.6 ms sooner without it, side by side): these find their
  // files by path.
  it('makes no file URL', async () => {
    const text = await readFile(join(TOP, bundle), 'utf8')
    expect(text).not.toContain('__cvmfsOciModule.url')
    expect(text).not.toMatch(/new URL\(/)
  })
})

/** What each bundle holds (esbuild's metafile, written by scripts/bundle-hot-paths.mjs). */
const BUNDLES = (): Record<string, string[]> => JSON.parse(readFileSync(join(TOP, 'dist/bundles.json'), 'utf8')) as Record<string, string[]>

/**
 * What each hot path's bundle may hold from node_modules: the router nothing; `resolve`
 * ajv's runtime helper for minLength (ucs2length, which the config file's validator calls;
 * the files of ajv it holds are checked below: never its compiler); the hook
 * @noble/hashes's SHA-256 (a config blob's digest is checked in JavaScript, since loading
 * node:crypto costs every container start ~7 ms: src/hook/image-config.ts), no more.
 */
const HOT_PATH_PACKAGES: Record<string, string[]> = {'dist/cli/fast-paths.cjs': [], 'dist/cli/resolve-main.cjs': ['ajv'], 'dist/hook/main.cjs': ['@noble/hashes']}

/** The files of ajv a bundle may hold: its runtime helpers (the generated validators call them). */
const AJV_RUNTIME = /^node_modules\/ajv\/dist\/runtime\/[\w-]+\.js$/

describe.each(Object.keys(HOT_PATH_PACKAGES))('%s holds', (bundle) => {
  it('our modules, and only the packages it may have from node_modules', () => {
    const inputs = BUNDLES()[bundle]!
    expect(inputs.length).toBeGreaterThan(3)
    const packages = new Set(inputs.map((input) => packageOf(input.slice(input.indexOf('node_modules/')))).filter((p) => p !== undefined))
    expect([...packages]).toEqual(HOT_PATH_PACKAGES[bundle])
    expect(inputs.filter((input) => input.startsWith('node_modules/ajv/') && !AJV_RUNTIME.test(input))).toEqual([])
  })

  it('loads no node:crypto', async () => {
    const text = await readFile(join(TOP, bundle), 'utf8')
    expect(text).not.toMatch(/require\("(node:)?crypto"\)/)
  })
})

describe.each(readdirSync(join(TOP, 'src/cli/definitions')).map((f) => `dist/cli/definitions/${f.replace(/\.ts$/, '.cjs')}`))('%s holds', (bundle) => {
  it("none of oclif, execa (its own bundle), ajv's compiler or tar-stream", () => {
    const inputs = BUNDLES()[bundle]!
    expect(inputs).toContain('dist/cli/fast-run.js')
    const heavy = /node_modules\/(@oclif\/|execa\/|ajv\/dist\/(core|compile)|tar-stream\/)/
    expect(inputs.filter((input) => heavy.test(input))).toEqual([])
    expect(inputs).not.toContain('dist/vendor/execa.js')
  })
})

/** A package and every package it depends on, as installed in node_modules. */
function withDependencies(name: string, into = new Set<string>()): Set<string> {
  if (into.has(name)) return into
  const manifest = join(TOP, 'node_modules', name, 'package.json')
  if (!existsSync(manifest)) return into // an optional dependency for another platform (bare-fs …)
  into.add(name)
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {dependencies?: Record<string, string>}
  for (const dep of Object.keys(pkg.dependencies ?? {})) withDependencies(dep, into)
  return into
}

/** node_modules/<name>/… or node_modules/@scope/<name>/… → the package name. */
function packageOf(file: string): string | undefined {
  return /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]
}

interface Case {
  argv: (dir: string) => string[]
  /** The bundle of the command (in dist/cli/), beside the entry and the router. */
  bundle?: string
  /** Packages it may load unbundled (tar-stream is patched through its own headers module, so it cannot be inlined). */
  packages?: string[]
  input?: string
}

const CASES: Record<string, Case> = {
  '--version': {argv: () => ['--version']},
  resolve: {argv: (d) => ['resolve', '--root', join(d, 'repo'), 'alpine:3.20'], bundle: 'resolve-main.cjs'},
  list: {argv: (d) => ['list', '--root', join(d, 'repo')], bundle: 'definitions/list.cjs'},
  'list --json': {argv: (d) => ['list', '--json', '--root', join(d, 'repo')], bundle: 'definitions/list.cjs'},
  publish: {argv: (d) => ['publish', '--root', join(d, 'repo'), '--tls-verify=false', '127.0.0.1:1/none/such:1'], bundle: 'definitions/publish.cjs', packages: ['tar-stream']},
  'sync --dry-run': {argv: (d) => ['sync', '--dry-run', '--root', join(d, 'repo'), join(d, 'wishlist.yaml')], bundle: 'definitions/sync.cjs', packages: ['tar-stream']},
  'gc --dry-run': {argv: (d) => ['gc', '--dry-run', '--root', join(d, 'repo')], bundle: 'definitions/gc.cjs'},
  rm: {argv: (d) => ['rm', '--ignore', '--root', join(d, 'repo'), 'alpine:3.20'], bundle: 'definitions/rm.cjs'},
  doctor: {argv: (d) => ['doctor', '--hooks-dir', join(d, 'hooks'), '--root', join(d, 'repo')], bundle: 'definitions/doctor.cjs'},
  'hook validate': {argv: (d) => ['hook', 'validate', join(d, 'hooks')], bundle: 'definitions/hook-validate.cjs'},
  'hook install': {argv: (d) => ['hook', 'install', '--hooks-dir', join(d, 'hooks-installed')], bundle: 'definitions/hook-install.cjs'},
  'hook uninstall': {argv: (d) => ['hook', 'uninstall', '--hooks-dir', join(d, 'hooks-none')], bundle: 'definitions/hook-uninstall.cjs'},
  'podman configure': {argv: (d) => ['podman', 'configure', '--storage-conf', join(d, 'storage.conf'), '--root', join(d, 'repo')], bundle: 'definitions/podman-configure.cjs'},
}

describe('what each command loads before its own work', () => {
  const dir = useTempDir('cvmfs-oci-hot-paths-', 'all')

  beforeAll(async () => {
    await mkdir(join(dir(), 'repo'))
    await mkdir(join(dir(), 'hooks'))
    await writeFile(join(dir(), 'wishlist.yaml'), 'version: 1\ncvmfs_repo: unused.example.org\ninput:\n  - http://127.0.0.1:1/none/such:1\n')
  })

  it('covers every command of the manifest', () => {
    const manifest = JSON.parse(readFileSync(join(TOP, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    const covered = new Set(Object.keys(CASES).map((name) => name.split(' --')[0]!.replace(' ', ':')))
    expect(Object.keys(manifest.commands).filter((id) => !covered.has(id))).toEqual([])
  })

  it.each(Object.keys(CASES))('%s', async (name) => {
    const c = CASES[name]!
    const trace = join(dir(), `trace-${name.replaceAll(/\W+/g, '_')}.json`)
    await exec(process.execPath, ['--require', join(TOP, 'test/helpers/load-trace.cjs'), join(TOP, 'bin/run.js'), ...c.argv(dir())], {
      reject: false,
      input: c.input ?? '',
      env: {CVMFS_OCI_LOAD_TRACE: trace, CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: '', NODE_ENV: 'production'},
    })
    const loaded = JSON.parse(await readFile(trace, 'utf8')) as {when: string; cjs: string[]; esm: string[]; builtins: string[]}
    const files = loaded.cjs.map((f) => relative(TOP, f)).filter((f) => f !== 'test/helpers/load-trace.cjs')
    // execa's bundle comes when the first program runs through it (not for spawnSync).
    const own = files.filter((f) => !f.startsWith('node_modules/') && !(f === 'dist/vendor/execa.cjs' && loaded.when.startsWith('spawn ')))
    expect(own, `at ${loaded.when}`).toEqual(['bin/run.js', 'dist/cli/fast-paths.cjs', ...(c.bundle ? [`dist/cli/${c.bundle}`] : [])])
    const allowed = new Set((c.packages ?? []).flatMap((p) => [...withDependencies(p)]))
    const foreign = files.filter((f) => f.startsWith('node_modules/') && !allowed.has(packageOf(f) ?? ''))
    expect(foreign, `at ${loaded.when}`).toEqual([])
    // (Node.js 22 reports the trace's own hooks module, loaded by module.register, as an import.)
    const esm = loaded.esm.filter((url) => !url.endsWith('/test/helpers/load-trace-hooks.mjs'))
    expect(esm.join('\n'), `ES modules, at ${loaded.when}`).toBe('')
    // Node.js's slow-loading built-ins come with the work that needs them (src/builtins.ts).
    // (Only zlib can be told here: node:child_process is the trace's own, worker_threads
    // comes with its module.register, and Node.js loads crypto itself.)
    expect(loaded.builtins.filter((name) => name === 'zlib'), `built-ins, at ${loaded.when}`).toEqual([])
  })
})

/**
 * `resolve` and `--version` write their line straight to the descriptor and make their
 * file-system calls through node:fs's callbacks (src/output.ts, src/fs-calls.ts):
 * Node.js's stream modules, which process.stdout and node:fs/promises load (~4 ms and
 * ~2 ms), stay unloaded, found or not. The commands whose bundles hold modules that
 * write files load node:fs/promises only at their first such call (src/fs-promises.ts),
 * and those read through fs-calls.ts too. And on Node.js 20 no run loads node:module,
 * which brings the ES module loader along (~2 ms): bin/run.js hands the router its
 * Module class, and the bundles' createRequire is their own require
 * (scripts/bundle-shims/node-module.mjs). Their file-system calls are synchronous while
 * the file system answers at once (src/fs-calls.ts), so libuv's thread pool never starts.
 */
describe('the quick commands load no stream module, nor node:fs/promises, nor start the thread pool', () => {
  const dir = useTempDir('cvmfs-oci-no-streams-', 'all')
  const preload = (): string => join(dir(), 'builtins.cjs')
  const builtinsLoaded = async (file: string): Promise<string[]> =>
    (JSON.parse(await readFile(file, 'utf8')) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
  let bare: Set<string>
  /** The threads of a bare `node -e 0` at its exit: Node.js's own, without libuv's thread pool. */
  let bareThreads: number
  /** Node.js < 22.1 (no compile cache of its own): bin/run.js loads no node:module there. */
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
  const nodeCaches = major > 22 || (major === 22 && minor >= 1)

  beforeAll(async () => {
    await writeDuccShapedImage(join(dir(), 'repo'), 'docker.io/library/alpine:3.20', `sha256:${'ab'.repeat(32)}`, [{name: 'bin/', type: 'directory'}])
    await mkdir(join(dir(), 'hooks'))
    await writeFile(join(dir(), 'hooks', 'a.json'), JSON.stringify({version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['precreate']}))
    // Records Node.js's built-ins loaded by the end of the run (no module.register here,
    // unlike load-trace.cjs: its loader thread would load streams itself).
    // And the process's threads then, in BUILTINS_OUT.threads.
    await writeFile(
      preload(),
      "process.on('exit', () => { const fs = require('node:fs'); fs.writeFileSync(process.env.BUILTINS_OUT, JSON.stringify(process.moduleLoadList)); fs.writeFileSync(process.env.BUILTINS_OUT + '.threads', String(fs.readdirSync('/proc/self/task').length)) })\n",
    )
    const out = join(dir(), 'builtins-bare.json')
    await exec(process.execPath, ['--require', preload(), '-e', '0'], {env: {BUILTINS_OUT: out}})
    bare = new Set(await builtinsLoaded(out))
    expect(bare.size).toBeGreaterThan(10)
    bareThreads = Number(await readFile(`${out}.threads`, 'utf8'))
    expect(bareThreads).toBeGreaterThan(1)
  })

  it.each([
    ['resolve (found)', ['resolve', '--overlay=false', '--root', 'REPO', 'alpine:3.20'], 0, /\.flat\/ab\/(ab)+\n$/],
    ['resolve (not published)', ['resolve', '--root', 'REPO', 'alpine:9.99'], 3, /^Error: .*alpine:9\.99/],
    ['--version', ['--version'], 0, /^cvmfs-oci\//],
    ['list', ['list', '--root', 'REPO'], 0, /docker\.io\/library\/alpine:3\.20/],
    ['rm --ignore (not published)', ['rm', '--ignore', '--root', 'REPO', 'alpine:9.99'], 0, /not published in .*: alpine:9\.99/],
    ['gc --dry-run', ['gc', '--dry-run', '--root', 'REPO'], 0, /would delete nothing/],
    ['hook validate', ['hook', 'validate', 'HOOKS'], 0, /a\.json: ok/],
  ] as const)('%s', async (name, argv, code, output) => {
    const out = join(dir(), `builtins-${name.replaceAll(/\W+/g, '_')}.json`)
    const runOnce = () =>
      exec(process.execPath, ['--require', preload(), join(TOP, 'bin/run.js'), ...argv.map((a) => (a === 'REPO' ? join(dir(), 'repo') : a === 'HOOKS' ? join(dir(), 'hooks') : a))], {
        reject: false,
        env: {BUILTINS_OUT: out, CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: '', XDG_CACHE_HOME: join(dir(), 'cache')},
      })
    const threadsAtExit = async () => Number(await readFile(`${out}.threads`, 'utf8'))
    const run = await runOnce()
    expect(run.exitCode, run.stderr).toBe(code)
    expect(`${run.stdout}${run.stderr}`).toMatch(output)
    const loaded = await builtinsLoaded(out)
    // Beyond what a bare `node -e 0` loads (Node.js itself loads a stream helper or two).
    const streams = loaded.filter((m) => (m === 'stream' || m.startsWith('internal/streams/') || m === 'internal/fs/promises') && !bare.has(m))
    expect(streams).toEqual([])
    expect(loaded).not.toContain('internal/fs/promises')
    if (!nodeCaches) expect(loaded.filter((m) => m === 'module' || m === 'internal/modules/esm/loader')).toEqual([])
    // Their reads are made synchronously (src/fs-calls.ts): libuv's thread pool, started by
    // the first asynchronous call, would add its threads (and a round trip to each call).
    // Except resolve's, they are synchronous only while each takes under 1 ms, and a call
    // preempted on a busy machine takes longer (in half the runs of gc --dry-run beside
    // three busy loops on two cores; once in a CI run): such a run is made again, up to
    // four times. Built without synchronous reads, every run ends with the pool's threads.
    let threads = await threadsAtExit()
    for (let again = 0; again < 4 && threads !== bareThreads; again++) {
      expect((await runOnce()).exitCode).toBe(code)
      threads = await threadsAtExit()
    }
    expect(threads, 'threads at exit').toBe(bareThreads)
  })

  // sync goes on to load the publish path (and node:fs/promises with it), but only after
  // its first line, which waits for the wish list to be read and checked.
  it("sync's first line: the wish list read and checked without node:fs/promises", async () => {
    const firstWrite = join(dir(), 'first-write.cjs')
    // Records the built-ins loaded when the run first writes to stdout or stderr.
    await writeFile(
      firstWrite,
      "const fs = require('node:fs'); const write = fs.writeSync; let seen = false\n" +
        "fs.writeSync = function (fd, ...rest) { if (!seen && (fd === 1 || fd === 2)) { seen = true; write(fs.openSync(process.env.BUILTINS_OUT, 'w'), JSON.stringify(process.moduleLoadList)) } return write.call(this, fd, ...rest) }\n",
    )
    const wishlist = join(dir(), 'wishlist.yaml')
    await writeFile(wishlist, 'version: 1\ncvmfs_repo: unused.example.org\ninput:\n  - http://127.0.0.1:1/none/such:1\n')
    const out = join(dir(), 'builtins-sync-first-line.json')
    const run = await exec(process.execPath, ['--require', firstWrite, join(TOP, 'bin/run.js'), 'sync', '--dry-run', '--root', join(dir(), 'repo'), wishlist], {
      reject: false,
      env: {BUILTINS_OUT: out, CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: '', XDG_CACHE_HOME: join(dir(), 'cache')},
    })
    expect(run.stderr.split('\n')[0]).toMatch(/^publishing into the directory .*, not cvmfs_repo unused\.example\.org$/)
    const loaded = await builtinsLoaded(out)
    expect(loaded.filter((m) => (m === 'stream' || m.startsWith('internal/streams/') || m === 'internal/fs/promises') && !bare.has(m))).toEqual([])
  })
})

#!/usr/bin/env node
// Build the cvmfs-oci RPM (noarch) offline from this checkout: stage the built
// application (dist/ as compiled from src/, bin/, hooks/, schemas/, package.json, a fresh
// oclif manifest) with the production modules of node_modules (those package-lock.json
// does not flag `dev`, copied as `npm ci` installed them: no npm, no registry, no cache),
// generate the man page, the bash completion and the licences of the bundled modules, then
// run rpmbuild on packaging/cvmfs-oci.spec with a private _topdir in a temp dir. Needs
// `npm ci` and a build first (`npm run rpm` builds) and rpmbuild (Debian: the `rpm` package).
// The package is unsigned, as rpmbuild makes it: sign releases with `rpmsign --addsign`.
// $RPM_PACKAGER sets the Packager tag.
//
//   node scripts/build-rpm.mjs [--output DIR] [--keep]
//     --output DIR  where the .rpm goes (default: rpmbuild/ in the checkout, git-ignored)
//     --keep        keep the temp dir (staging and rpmbuild's _topdir) and print it
// Prints the path of the .rpm on stdout.
import {execFileSync} from 'node:child_process'
import {chmod, copyFile, cp, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, dirname, join, relative} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import {parseArgs} from 'node:util'

import {completionScript} from './write-completion.mjs'
import {manPage, pageDate} from './write-manpage.mjs'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const SPEC = join(top, 'packaging', 'cvmfs-oci.spec')

/** A failure with its message for the user: thrown, so that main's cleanup (its scratch directory) runs. */
class BuildFailure extends Error {}
const fail = (message) => {
  throw new BuildFailure(message)
}
const exists = (path) => stat(path).then(() => true, () => false)

/** Run a program, its output to our stderr (stdout carries only the .rpm path); throws on failure. */
function runTool(file, args, options = {}) {
  try {
    return execFileSync(file, args, {stdio: ['ignore', options.capture ? 'pipe' : 2, 2], encoding: 'utf8', ...options})
  } catch (error) {
    if (error.code === 'ENOENT') fail(`${file} not found on PATH${options.debianPackage ? `: install the Debian package ${options.debianPackage}` : ''}`)
    fail(`${[file, ...args].join(' ')} failed (${error.status ?? error.signal})`)
  }
}

/** Files under `dir` (and directories too, before their content, when asked); a directory removed while walking is skipped. */
async function* walk(dir, options = {}) {
  const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (options.withDirectories) yield path
      yield* walk(path, options)
    } else yield path
  }
}

/** dist/**\/*.js for every src/**\/*.ts (and the .cjs bundle beside a bundled entry: hot paths, commands, execa): exactly what the sources compile to, no stale file, no source map. */
async function stageDist(app) {
  for await (const source of walk(join(top, 'src'))) {
    if (!source.endsWith('.ts') || source.endsWith('.d.ts')) continue
    const rel = relative(join(top, 'src'), source).replace(/\.ts$/, '.js')
    const built = join(top, 'dist', rel)
    if (!(await exists(built))) fail(`dist/${rel} is missing: run \`npm run build\` first (\`npm run rpm\` does)`)
    await mkdir(dirname(join(app, 'dist', rel)), {recursive: true})
    await copyFile(built, join(app, 'dist', rel))
    // The bundles (scripts/bundle-hot-paths.mjs) sit beside their entry modules.
    const bundle = built.replace(/\.js$/, '.cjs')
    if (await exists(bundle)) await copyFile(bundle, join(app, 'dist', rel.replace(/\.js$/, '.cjs')))
  }
}

/**
 * The production packages of package-lock.json: every `node_modules/…` path it does not
 * flag `dev` (what `npm prune --omit=dev` keeps: `devOptional` and `optional` ones are
 * production too, where installed). Chosen from the lockfile rather than by npm, which even
 * offline wants registry metadata in its cache that `npm ci` never put there. Each one must
 * be installed as the lockfile says; an optional one may be absent (another platform's).
 */
async function productionPackages() {
  const lock = JSON.parse(await readFile(join(top, 'package-lock.json'), 'utf8'))
  if (lock.packages === null || typeof lock.packages !== 'object') fail('package-lock.json lists no "packages" (lockfileVersion 2 or 3): write it with npm 7 or newer')
  const paths = []
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev) continue
    if (entry.link) fail(`${path} is a link in package-lock.json (a workspace or file: dependency), which the RPM cannot bundle`)
    const installed = await readFile(join(top, path, 'package.json'), 'utf8').then(JSON.parse, () => undefined)
    if (installed === undefined) {
      if (entry.optional || entry.devOptional) continue
      fail(`${path} ${entry.version} (package-lock.json) is not installed: run \`npm ci\``)
    }
    if (installed.version !== entry.version) fail(`${path} is ${installed.version}, package-lock.json says ${entry.version}: run \`npm ci\``)
    paths.push(path)
  }
  return paths
}

/**
 * The production modules (see productionPackages), each copied without its own nested
 * node_modules/ (those nested that are production come as entries of their own), then
 * tidied to what Node.js loads: what rpmlint would flag is removed here rather than
 * excused, and every removal is one the test suite covers by running the unpacked package
 * (publish, resolve, the hook).
 */
async function stageNodeModules(app) {
  const modules = join(app, 'node_modules')
  for (const path of await productionPackages()) {
    const nested = join(top, path, 'node_modules')
    await cp(join(top, path), join(app, path), {recursive: true, verbatimSymlinks: true, filter: (source) => source !== nested})
  }
  // Dot entries: the modules' repository files (.github, .npmignore, .eslintrc.yml).
  for await (const path of walk(modules, {withDirectories: true})) {
    if (basename(path).startsWith('.')) await rm(path, {recursive: true, force: true})
  }
  for (const name of await readdir(modules)) {
    // tar-stream depends on the bare-* modules for the Bare runtime only (its package.json
    // maps `fs` to bare-fs under the "bare" condition; Node.js never loads them). Their
    // native addons, prebuilt for a dozen platforms, and the C sources of those have no
    // place in a noarch package.
    if (name.startsWith('bare-')) {
      for (const native of ['prebuilds', 'binding.c', 'CMakeLists.txt']) await rm(join(modules, name, native), {recursive: true, force: true})
    }
  }
  // ajv ships its TypeScript source tree, lib/ (.ts and the schemas its build copies into
  // dist/), beside the compiled dist/ that Node.js loads (its main: dist/ajv.js).
  await rm(join(modules, 'ajv', 'lib'), {recursive: true, force: true})
  for await (const file of walk(modules)) {
    // The modules' own command-line programs (package.json "bin"): nothing runs them here,
    // and there are no node_modules/.bin links to them.
    if (basename(file) !== 'package.json') continue
    const pkg = JSON.parse(await readFile(file, 'utf8'))
    const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {})
    const used = [pkg.main ?? 'index.js', JSON.stringify(pkg.exports ?? null)].join('\n')
    for (const bin of bins) if (!used.includes(bin.replace(/^\.\//, ''))) await rm(join(dirname(file), bin), {force: true})
  }
  for await (const file of walk(modules)) {
    // TypeScript (declarations, sources) and source maps serve editors and debuggers, not Node.js.
    if (/\.[cm]?ts$|\.map$/.test(file)) {
      await rm(file)
      continue
    }
    if (await isNativeCode(file)) fail(`${relative(app, file)} is native code, which a noarch package cannot carry: find out why it is there`)
    // Node.js loads the rest; nothing executes it.
    await chmod(file, 0o644)
  }
}

/** ELF, Mach-O or PE: a compiled program or library for some platform. */
async function isNativeCode(file) {
  const handle = await open(file, 'r')
  try {
    const head = Buffer.alloc(512)
    const {bytesRead} = await handle.read(head, 0, 512, 0)
    const magic = head.subarray(0, 4).toString('hex')
    if (magic === '7f454c46' || ['feedface', 'feedfacf', 'cefaedfe', 'cffaedfe'].includes(magic)) return true
    if (head.subarray(0, 2).toString('latin1') !== 'MZ' || bytesRead < 64) return false
    const pe = head.readUInt32LE(60)
    return pe + 4 <= bytesRead && head.subarray(pe, pe + 4).toString('latin1') === 'PE\0\0'
  } finally {
    await handle.close()
  }
}

/** oclif.manifest.json of the staged commands (as scripts/write-manifest.mjs writes the checkout's). */
async function stageManifest(app) {
  const {Plugin} = await import(pathToFileURL(join(app, 'node_modules', '@oclif', 'core', 'lib', 'index.js')).href)
  const plugin = new Plugin({root: app, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
  await plugin.load()
  await writeFile(join(app, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`)
  return plugin.manifest
}

/** The production packages in the staged node_modules: path, name, version, licence. */
async function bundledPackages(app) {
  const packages = []
  for await (const file of walk(join(app, 'node_modules'))) {
    const rel = relative(app, file)
    // node_modules/<name>/package.json or node_modules/@scope/<name>/package.json, at any depth.
    if (!/(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(rel)) continue
    const pkg = JSON.parse(await readFile(file, 'utf8'))
    if (!pkg.name || !pkg.version) continue // a nested package.json of a module's own (e.g. dist/esm)
    const license = typeof pkg.license === 'string' ? pkg.license : (pkg.licenses ?? []).map((l) => l.type).join(' OR ') || 'UNKNOWN'
    packages.push({dir: dirname(file), rel: dirname(rel), name: pkg.name, version: pkg.version, license})
  }
  return packages.sort((a, b) => a.rel.localeCompare(b.rel))
}

/** One file with every bundled module's licence text (or, without one, its declared licence). */
async function licenceText(packages) {
  const parts = ['The cvmfs-oci package bundles these npm modules in /usr/lib/cvmfs-oci/node_modules.', 'Each one\'s name, version, declared licence and licence file follow.', '']
  for (const pkg of packages) {
    parts.push('='.repeat(72), `${pkg.name} ${pkg.version} (${pkg.license})`, `/usr/lib/cvmfs-oci/${pkg.rel}`)
    const files = (await readdir(pkg.dir)).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort()
    if (files.length === 0) parts.push(`(the module ships no licence file; its package.json declares ${pkg.license})`, '')
    for (const file of files) parts.push('-'.repeat(72), `${file}:`, '', (await readFile(join(pkg.dir, file), 'utf8')).trimEnd(), '')
  }
  return `${parts.join('\n')}\n`
}

/** The SPDX identifiers of an expression (`(MIT OR CC0-1.0)` → MIT, CC0-1.0). */
const spdxIds = (expression) => expression.replace(/[()]/g, ' ').split(/\s+(?:AND|OR|WITH)\s+|\s+/).filter(Boolean)

async function main() {
  const {values} = parseArgs({options: {output: {type: 'string'}, keep: {type: 'boolean'}}})
  const output = values.output ?? join(top, 'rpmbuild')
  const pkg = JSON.parse(await readFile(join(top, 'package.json'), 'utf8'))
  const spec = await readFile(SPEC, 'utf8')
  const specVersion = /^Version:\s*(\S+)/m.exec(spec)?.[1]
  if (specVersion !== pkg.version) fail(`packaging/cvmfs-oci.spec has Version ${specVersion}, package.json ${pkg.version}: make them agree (and add a %changelog entry)`)
  if (!(await exists(join(top, 'dist', 'cli', 'resolve-main.js')))) fail('dist/ is missing: run `npm run build` first (`npm run rpm` does)')

  const work = await mkdtemp(join(tmpdir(), 'cvmfs-oci-rpm-'))
  try {
    const name = `${pkg.name}-${pkg.version}`
    const stage = join(work, 'stage', name)
    const app = join(stage, 'app')
    await mkdir(app, {recursive: true})
    for (const file of ['package.json', 'bin', 'hooks', 'schemas']) await cp(join(top, file), join(app, file), {recursive: true})
    await stageDist(app)
    await stageNodeModules(app)
    const manifest = await stageManifest(app)

    // The default configuration must be one cvmfs-oci accepts (schemas/config.schema.json).
    const {readConfig} = await import(pathToFileURL(join(app, 'dist', 'layout', 'roots.js')).href)
    readConfig(join(top, 'packaging', 'config.json'))
    await copyFile(join(top, 'packaging', 'config.json'), join(stage, 'config.json'))
    await copyFile(join(top, 'packaging', 'cvmfs-oci-hook'), join(stage, 'cvmfs-oci-hook'))
    await chmod(join(stage, 'cvmfs-oci-hook'), 0o755)
    for (const file of ['LICENSE', 'README.md']) await copyFile(join(top, file), join(stage, file))
    await writeFile(join(stage, 'cvmfs-oci.1'), manPage(manifest, pkg, pageDate()))
    await writeFile(join(stage, 'cvmfs-oci.bash'), completionScript(manifest, pkg.oclif?.bin ?? pkg.name))

    const packages = await bundledPackages(app)
    const declared = new Set(spdxIds(/^License:\s*(.+)$/m.exec(spec)?.[1] ?? ''))
    const undeclared = [...new Set(packages.flatMap((p) => spdxIds(p.license)))].filter((id) => !declared.has(id))
    if (undeclared.length) fail(`bundled modules are under ${undeclared.join(', ')}, which the License: line of packaging/cvmfs-oci.spec does not name; add them`)
    await writeFile(join(stage, 'bundled-licenses.txt'), await licenceText(packages))

    const rpmTop = join(work, 'rpmbuild')
    for (const dir of ['SOURCES', 'SPECS', 'BUILD', 'RPMS', 'SRPMS']) await mkdir(join(rpmTop, dir), {recursive: true})
    runTool('tar', ['--owner=0', '--group=0', '--numeric-owner', '-czf', join(rpmTop, 'SOURCES', `${name}.tar.gz`), '-C', join(work, 'stage'), name])
    const provides = [...new Set(packages.map((p) => `Provides: bundled(nodejs-${p.name}) = ${p.version}`))].sort()
    await writeFile(join(rpmTop, 'SOURCES', 'bundled-provides.inc'), `${provides.join('\n')}\n`)
    await copyFile(SPEC, join(rpmTop, 'SPECS', 'cvmfs-oci.spec'))

    // Where rpm's database does not know rpm itself (Debian), it cannot tell whether the
    // BuildRequires are met: skip that check there, as nothing is compiled.
    let rpmBased = true
    try {
      execFileSync('rpm', ['-q', 'rpm'], {stdio: 'ignore'})
    } catch {
      rpmBased = false
    }
    // The Packager tag comes from the build, not the spec (as Fedora's guidelines want it).
    const packager = process.env.RPM_PACKAGER || 'cvmfs-oci developers <cvmfs-oci@localhost>'
    runTool('rpmbuild', ['-bb', '--define', `_topdir ${rpmTop}`, '--define', `packager ${packager}`, ...(rpmBased ? [] : ['--nodeps']), join(rpmTop, 'SPECS', 'cvmfs-oci.spec')], {debianPackage: 'rpm'})

    const built = (await readdir(join(rpmTop, 'RPMS', 'noarch'))).filter((f) => f.endsWith('.rpm'))
    if (built.length !== 1) fail(`expected one noarch RPM, rpmbuild made: ${built.join(', ') || 'none'}`)
    await mkdir(output, {recursive: true})
    const rpm = join(output, built[0])
    await copyFile(join(rpmTop, 'RPMS', 'noarch', built[0]), rpm)
    if (values.keep) console.error(`build-rpm: kept ${work}`)
    console.log(rpm)
  } finally {
    if (!values.keep) await rm(work, {recursive: true, force: true})
  }
}

try {
  await main()
} catch (error) {
  if (!(error instanceof BuildFailure)) throw error
  console.error(`build-rpm: ${error.message}`)
  process.exitCode = 1
}

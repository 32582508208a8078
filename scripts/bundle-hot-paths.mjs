#!/usr/bin/env node
// Bundle the entries whose start-up matters into single CommonJS files (esbuild), so that
// Node.js loads one file instead of a graph of ES modules:
//   dist/cli/fast-paths.cjs        the CLI's router and `--version`
//   dist/cli/resolve-main.cjs      `resolve`
//   dist/hook/main.cjs             the OCI hook
//   dist/cli/definitions/<c>.cjs   each other command, parsed and run without oclif
//                                  (src/cli/fast-run.ts), beside its definition
//   dist/vendor/execa.cjs          execa, which the commands' bundles require only when
//                                  their first program runs (src/exec.ts imports it then)
// Measured here on Node 20: one CommonJS file instead of a graph of ES modules takes
// `resolve` from ~1.27× to ~1.07× a bare `node -e 0`, and the hook from ~1.3× to ~1.12×;
// `list` from ~3.2× (through oclif) to ~1.2× (BENCHMARKS.md). Node.js 20 parses every
// byte of a bundle before it runs (~40 ms for 870 kB), so what a command needs only
// later stays out of its bundle.
//
// Left out of the bundles, loaded from node_modules when (if) used: @oclif/core (only on
// the paths that hand over to oclif: an error to print, a warning), and tar-stream, whose
// PAX headers src/unpack patches through its own headers module, which must be the very
// module tar-stream uses. yaml, the TOML parser and semver are bundled into the commands
// that read such files. Dynamic imports become require() calls (no ES module loader).
//
// yaml is bundled from its ES module build (yaml/browser/dist, the same code as its
// CommonJS build for Node.js): esbuild wraps each CommonJS module and runs them all at
// load, where ES modules are hoisted into the bundle and what sync does not use is left
// out. Measured: sync's bundle 31 KB smaller, its code cache 352 → 321 KB, its first line
// 2.3–2.8 ms sooner (medians of 30). The one difference: yaml's own warnings (a mapping
// key that is a collection) go to console.warn instead of process.emitWarning.
//
// Whitespace and syntax are minified (Node.js 20 parses every byte of a bundle before it
// runs it: for sync's that halves the ~80 M instructions of parsing, measured with
// callgrind); names stay, for readable stack traces. dist/bundles.json lists the modules
// each bundle holds (esbuild's metafile), for test/unit/hot-paths.test.ts.
//
// Our modules that find files through import.meta.url all sit one directory below dist/
// and go two up to the package root; every module of a bundle gets the URL of such a
// place (its own directory, or dist/cli/ for the definitions' bundles one level deeper).
import {readdir, rm, writeFile} from 'node:fs/promises'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const EXTERNAL = ['@oclif/core', '@oclif/core/*', 'tar-stream', 'typescript']

/** Imports of src/vendor/ modules → a require() of their own bundles, from `outfile`. */
function vendorBundles(outfile) {
  return {
    name: 'vendor-bundles',
    setup(b) {
      b.onResolve({filter: /\/vendor\/[^/]+\.js$/}, (args) => {
        if (args.kind === 'entry-point') return undefined
        const own = join(args.resolveDir, args.path).replace(/\.js$/, '.cjs')
        return {path: `./${relative(dirname(outfile), own)}`, external: true}
      })
    },
  }
}

/** node:module → scripts/bundle-shims/node-module.mjs (its createRequire is the bundle's require). */
const nodeModuleShim = {
  name: 'node-module-shim',
  setup(b) {
    b.onResolve({filter: /^(node:)?module$/}, () => ({path: join(top, 'scripts', 'bundle-shims', 'node-module.mjs')}))
  },
}

/** Bundle path (from the top) → the modules it holds. */
const contents = {}

async function bundle({entry, stdin, outfile, urlDir}) {
  const up = relative(dirname(outfile), urlDir) || '.'
  const {metafile} = await build({
    ...(entry ? {entryPoints: [entry]} : {stdin}),
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
    external: EXTERNAL,
    plugins: [vendorBundles(outfile), nodeModuleShim],
    alias: {yaml: join(top, 'node_modules', 'yaml', 'browser', 'dist', 'index.js')},
    supported: {'dynamic-import': false},
    minifyWhitespace: true,
    minifySyntax: true,
    metafile: true,
    // import.meta does not exist in CommonJS: give it the URL of a module in urlDir, made
    // at its first use (a file URL at every load costs Node.js's URL code its compilation),
    // and that directory (the router's, every run's: __dirname itself).
    define: {'import.meta.url': '__cvmfsOciModule.url', 'import.meta.dirname': '__cvmfsOciModule.dirname'},
    banner: {
      js:
        `let __cvmfsOciModuleUrl; const __cvmfsOciModule = {get url() { return __cvmfsOciModuleUrl ??= require("node:url").pathToFileURL(require("node:path").join(__dirname, ${JSON.stringify(up)}, "bundle.cjs")).href }, ` +
        (up === '.' ? 'dirname: __dirname};' : `get dirname() { return require("node:path").join(__dirname, ${JSON.stringify(up)}) }};`),
    },
  })
  contents[relative(top, outfile)] = Object.keys(metafile.inputs).filter((input) => !input.startsWith('<stdin>')).sort()
}

for (const entry of ['dist/cli/fast-paths.js', 'dist/cli/resolve-main.js', 'dist/hook/main.js', 'dist/vendor/execa.js']) {
  await bundle({entry: join(top, entry), outfile: join(top, entry.replace(/\.js$/, '.cjs')), urlDir: dirname(join(top, entry))})
}

const definitions = join(top, 'dist', 'cli', 'definitions')
const names = (await readdir(definitions)).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3))
for (const stale of (await readdir(definitions)).filter((f) => f.endsWith('.cjs') && !names.includes(f.slice(0, -4)))) {
  await rm(join(definitions, stale))
}
for (const name of names) {
  // The command's id as oclif names it: hook-validate → hook:validate.
  const id = name.replace('-', ':')
  const contents = `import definition from './${name}.js'\nimport {runFast} from '../fast-run.js'\nexport const run = (argv) => runFast(${JSON.stringify(id)}, definition, argv)\n`
  await bundle({stdin: {contents, resolveDir: definitions, sourcefile: `${name}-entry.js`, loader: 'js'}, outfile: join(definitions, `${name}.cjs`), urlDir: join(top, 'dist', 'cli')})
}
await writeFile(join(top, 'dist', 'bundles.json'), `${JSON.stringify(contents, null, 2)}\n`)
console.error(`bundled dist/cli/fast-paths.cjs, dist/cli/resolve-main.cjs, dist/hook/main.cjs, dist/vendor/execa.cjs and ${names.length} command(s) in dist/cli/definitions/`)

/**
 * The router: commands answered without loading oclif (~110 ms of start-up, plus its
 * configuration and each command's graph of ES modules). `--version` here; `resolve`
 * (before every container start) in its own bundle (dist/cli/resolve-main.cjs,
 * resolve-main.ts); every other command in its own bundle (dist/cli/definitions/*.cjs,
 * src/cli/fast-run.ts), which leaves to oclif any command line it does not parse exactly
 * as oclif would. `--help` and `-h`, `help`, topics alone and unknown commands go to
 * oclif, and so does everything with CVMFS_OCI_NO_FAST_PATH set (to rule this path out).
 * Every run compiles this file anew on Node.js 20 (it loads the code cache), so it holds
 * the routing only.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {requireBundle, type Entry} from './code-cache.js'
import type {resolveMain} from './resolve-main.js'
import {fdOutput} from '../output.js'

/** Commands with a bundle of their own: the words that name them → the definition's file. */
const BUNDLED = new Map(
  Object.entries({
    list: 'list',
    publish: 'publish',
    sync: 'sync',
    gc: 'gc',
    rm: 'rm',
    doctor: 'doctor',
    'hook install': 'hook-install',
    'hook uninstall': 'hook-uninstall',
    'hook validate': 'hook-validate',
    'podman configure': 'podman-configure',
  }),
)

/**
 * A bundle of dist/cli/ (`file` relative to it). Found through import.meta.dirname, not a
 * file URL: the bundle's import.meta.url is made at its first use (scripts/bundle-hot-paths.mjs),
 * and making it and parsing URLs showed in `--cpu-prof` samples of `resolve`; without them
 * (and without builtins.ts's) `resolve` was 1.6 ms sooner side by side (BENCHMARKS.md).
 */
function bundle<T>(file: string, entry: Entry): T {
  return requireBundle(join(import.meta.dirname, file), entry) as T
}

/** Exit code when handled here, undefined to let oclif run. */
export async function fastPath(argv: string[], entry: Entry): Promise<number | undefined> {
  if (process.env.CVMFS_OCI_NO_FAST_PATH) return undefined
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined
  if (argv[0] === 'resolve') return bundle<{resolveMain: typeof resolveMain}>('./resolve-main.cjs', entry).resolveMain(argv.slice(1))
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    // oclif's format: name/version platform-arch node-version
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as {name: string; version: string}
    fdOutput(1).write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
    return 0
  }
  const words = argv[0] === 'hook' || argv[0] === 'podman' ? 2 : 1
  const file = BUNDLED.get(argv.slice(0, words).join(' '))
  if (file === undefined || argv.length < words) return undefined
  return bundle<{run: (argv: string[]) => Promise<number | undefined>}>(`./definitions/${file}.cjs`, entry).run(argv.slice(words))
}

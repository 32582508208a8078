/**
 * Commands answered without loading oclif (~110 ms of start-up, plus its configuration
 * and each command's graph of ES modules): `resolve` (before every container start) and
 * `--version` here; every other command in its own bundle (dist/cli/definitions/*.cjs,
 * src/cli/fast-run.ts), which leaves to oclif any command line it does not parse exactly
 * as oclif would. `--help` and `-h`, `help`, topics alone and unknown commands go to
 * oclif, and so does everything with CVMFS_OCI_NO_FAST_PATH set (to rule this path out).
 */
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {requireBundle} from './code-cache.js'
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

/** Exit code when handled here, undefined to let oclif run. */
export async function fastPath(argv: string[]): Promise<number | undefined> {
  if (process.env.CVMFS_OCI_NO_FAST_PATH) return undefined
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined
  if (argv[0] === 'resolve') {
    const {resolveMain} = await import('./resolve-main.js')
    return resolveMain(argv.slice(1))
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    // oclif's format: name/version platform-arch node-version
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {name: string; version: string}
    fdOutput(1).write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
    return 0
  }
  const words = argv[0] === 'hook' || argv[0] === 'podman' ? 2 : 1
  const file = BUNDLED.get(argv.slice(0, words).join(' '))
  if (file === undefined || argv.length < words) return undefined
  const bundle = requireBundle(fileURLToPath(new URL(`./definitions/${file}.cjs`, import.meta.url))) as {run: (argv: string[]) => Promise<number | undefined>}
  return bundle.run(argv.slice(words))
}

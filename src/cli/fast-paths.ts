/**
 * Commands answered without loading oclif (~110 ms of start-up): `resolve` (before
 * every container start) and `--version`. Anything else, and `--help` of these,
 * returns undefined and goes to oclif.
 */
import {readFileSync} from 'node:fs'

/** Exit code when handled here, undefined to let oclif run. */
export async function fastPath(argv: string[]): Promise<number | undefined> {
  if (argv.some((a) => a === '--help' || a === '-h')) return undefined
  if (argv[0] === 'resolve') {
    const {resolveMain} = await import('./resolve-main.js')
    return resolveMain(argv.slice(1))
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-v')) {
    // oclif's format: name/version platform-arch node-version
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {name: string; version: string}
    process.stdout.write(`${pkg.name}/${pkg.version} ${process.platform}-${process.arch} node-${process.version}\n`)
    return 0
  }
  return undefined
}

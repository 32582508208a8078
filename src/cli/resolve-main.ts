/**
 * `cvmfs-oci resolve` without oclif: it runs before every container start, so its
 * entry loads Node built-ins and the resolver only (no oclif, execa or ajv
 * compiler). fast-paths.ts sends `resolve …` here; `resolve --help` goes to oclif,
 * whose Resolve command documents the same flags and delegates here too.
 */
import {CvmfsOciError, toCvmfsOciError, UsageError} from '../errors.js'
import {fdOutput, type Output} from '../output.js'
import {callSynchronously} from '../fs-calls.js'
import {missingForReadOnlyPodman, writable} from '../layout/mount-points.js'
import {resolveImage} from '../layout/resolve.js'
import {searchRoots} from '../layout/roots.js'

export const RESOLVE_USAGE = 'Usage: cvmfs-oci resolve IMAGE|IMAGE-ID [--root DIR]... [--overlay[=true|false]]'

/** `resolve`'s command line. */
export interface ResolveArgs {
  image: string
  roots: string[]
  config?: string
  /** `--overlay` the way podman spells a boolean it otherwise decides itself (as `--tls-verify`): bare or `=true` always, `=false` never; not given, automatic. */
  overlay: 'auto' | 'always' | 'never'
}

/**
 * `resolve`'s arguments, the flags of oclif's Resolve command (src/commands/resolve.ts
 * documents them): `--root DIR` (or `--root=DIR`, repeatable), `--config FILE` (once),
 * `--overlay[=true|false]` (or `-O`; bare, as podman spells a boolean, so `--overlay
 * true` is the flag and an IMAGE "true"), one IMAGE, `--` before an IMAGE that starts
 * with "-".
 * By hand rather than node:util's parseArgs, which costs every start ~7 M instructions
 * (~2 ms on Node.js 20) to load and compile, for four flags.
 */
export function parseResolveArgv(argv: readonly string[]): ResolveArgs {
  const usage = (message: string) => new UsageError(`${message}\n${RESOLVE_USAGE}`)
  const roots: string[] = []
  const positionals: string[] = []
  let config: string | undefined
  let overlay: ResolveArgs['overlay'] = 'auto'
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (word === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word)
      continue
    }
    const eq = word.indexOf('=')
    const name = eq === -1 ? word : word.slice(0, eq)
    const inline = eq === -1 ? undefined : word.slice(eq + 1)
    if (name === '--overlay' || name === '-O') {
      if (inline === undefined || inline === 'true') overlay = 'always'
      else if (inline === 'false') overlay = 'never'
      else throw usage(`--overlay takes true or false, not ${JSON.stringify(inline)}`)
      continue
    }
    if (name !== '--root' && name !== '--config') throw usage(`unknown option ${JSON.stringify(name)} (cvmfs-oci resolve --help lists them)`)
    const value = inline ?? argv[++i]
    if (value === undefined || value === '') throw usage(`${name} needs a value`)
    if (inline === undefined && value.startsWith('-')) throw usage(`${name} needs a value, not the option ${JSON.stringify(value)} (write ${name}=${value} for a value that starts with "-")`)
    if (name === '--root') roots.push(value)
    else if (config !== undefined) throw usage('--config is given twice')
    else config = value
  }
  if (positionals.length !== 1) throw usage('resolve takes exactly one IMAGE')
  return {image: positionals[0]!, roots, config, overlay}
}

/**
 * Run `resolve` with these arguments; returns the exit code. The process does nothing
 * else, so its few file-system calls are made synchronously (layout/fs-calls.ts).
 */
export async function resolveMain(argv: string[], out: Output = fdOutput(1), err: Output = fdOutput(2)): Promise<number> {
  callSynchronously()
  try {
    const args = parseResolveArgv(argv)
    const roots = searchRoots({flagRoots: args.roots, env: process.env, configPath: args.config})
    const {path} = await resolveImage(args.image, {roots, env: process.env})
    let asOverlay = args.overlay === 'always'
    if (args.overlay === 'auto') {
      // podman creates what a root lacks only where it can write (a few lstats, no scan).
      const missing = await missingForReadOnlyPodman(path)
      if (missing.length > 0 && !(await writable(path))) {
        asOverlay = true
        err.write(`${path} lacks ${missing.map((p) => `/${p}`).join(', ')}, which podman needs to run a read-only root: printing the ":O" form (podman's overlay); --overlay=false prints the plain path\n`)
      }
    }
    out.write(`${path}${asOverlay ? ':O' : ''}\n`)
    return 0
  } catch (error) {
    const ours: CvmfsOciError = toCvmfsOciError(error)
    err.write(`Error: ${ours.display()}\n`)
    return ours.exitCode
  }
}

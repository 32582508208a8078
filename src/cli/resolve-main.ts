/**
 * `cvmfs-oci resolve` without oclif: it runs before every container start, so its
 * entry loads Node built-ins and the resolver only (no oclif, execa or ajv
 * compiler). fast-paths.ts sends `resolve …` here; `resolve --help` goes to oclif,
 * whose Resolve command documents the same flags and delegates here too.
 */
import {parseArgs} from 'node:util'

import {CvmfsOciError, toCvmfsOciError, UsageError} from '../errors.js'
import {fdOutput, type Output} from '../output.js'
import {callSynchronously} from '../layout/fs-calls.js'
import {missingForReadOnlyPodman, writable} from '../layout/mount-points.js'
import {resolveImage} from '../layout/resolve.js'
import {searchRoots} from '../layout/roots.js'

export const RESOLVE_USAGE = 'Usage: cvmfs-oci resolve IMAGE|IMAGE-ID [--root DIR]... [--overlay[=true|false]]'

/**
 * `--overlay` the way podman spells a boolean it otherwise decides itself (as
 * `--tls-verify`): bare or `=true` always, `=false` never; not given, automatic.
 */
function overlayMode(argv: string[]): {argv: string[]; mode: 'auto' | 'always' | 'never'} {
  let mode: 'auto' | 'always' | 'never' = 'auto'
  const rest: string[] = []
  for (const [i, arg] of argv.entries()) {
    if (arg === '--') {
      rest.push(...argv.slice(i))
      break
    }
    const m = /^(?:--overlay|-O)(?:=(.*))?$/.exec(arg)
    if (!m) {
      rest.push(arg)
      continue
    }
    if (m[1] === undefined || m[1] === 'true') mode = 'always'
    else if (m[1] === 'false') mode = 'never'
    else throw new UsageError(`--overlay takes true or false, not ${JSON.stringify(m[1])}\n${RESOLVE_USAGE}`)
  }
  return {argv: rest, mode}
}

/**
 * Run `resolve` with these arguments; returns the exit code. The process does nothing
 * else, so its few file-system calls are made synchronously (layout/fs-calls.ts).
 */
export async function resolveMain(argv: string[], out: Output = fdOutput(1), err: Output = fdOutput(2)): Promise<number> {
  callSynchronously()
  try {
    const overlay = overlayMode(argv)
    let parsed
    try {
      parsed = parseArgs({
        args: overlay.argv,
        allowPositionals: true,
        strict: true,
        options: {
          root: {type: 'string', multiple: true},
          config: {type: 'string'},
        },
      })
    } catch (error) {
      throw new UsageError(`${(error as Error).message}\n${RESOLVE_USAGE}`)
    }
    const {positionals, values} = parsed
    if (positionals.length !== 1) throw new UsageError(`resolve takes exactly one IMAGE\n${RESOLVE_USAGE}`)
    const roots = searchRoots({flagRoots: values.root, env: process.env, configPath: values.config})
    const {path} = await resolveImage(positionals[0]!, {roots, env: process.env})
    let asOverlay = overlay.mode === 'always'
    if (overlay.mode === 'auto') {
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

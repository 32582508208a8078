/**
 * `cvmfs-oci resolve` without oclif: it runs before every container start, so its
 * entry loads Node built-ins and the resolver only (no oclif, execa or ajv
 * compiler). fast-paths.ts sends `resolve …` here; `resolve --help` goes to oclif,
 * whose Resolve command documents the same flags and delegates here too.
 */
import {parseArgs} from 'node:util'

import {CvmfsOciError, toCvmfsOciError, UsageError} from '../errors.js'
import {resolveImage} from '../layout/resolve.js'
import {searchRoots} from '../layout/roots.js'

export const RESOLVE_USAGE = 'Usage: cvmfs-oci resolve IMAGE [--root DIR]... [--overlay]'

/** Run `resolve` with these arguments; returns the exit code. */
export async function resolveMain(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  try {
    let parsed
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          root: {type: 'string', multiple: true},
          overlay: {type: 'boolean', short: 'O'},
          config: {type: 'string'},
        },
      })
    } catch (error) {
      throw new UsageError(`${(error as Error).message}\n${RESOLVE_USAGE}`)
    }
    const {positionals, values} = parsed
    if (positionals.length !== 1) throw new UsageError(`resolve takes exactly one IMAGE\n${RESOLVE_USAGE}`)
    const roots = searchRoots({flagRoots: values.root, env: process.env, configPath: values.config})
    const resolved = await resolveImage(positionals[0]!, {roots, env: process.env})
    out.write(`${resolved.path}${values.overlay ? ':O' : ''}\n`)
    return 0
  } catch (error) {
    const ours: CvmfsOciError = toCvmfsOciError(error)
    err.write(`Error: ${ours.display()}\n`)
    return ours.exitCode
  }
}

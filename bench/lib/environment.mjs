// The environment every measured command runs in: that of a fresh machine, where nothing
// tells Node.js to do work at start-up. NODE_EXTRA_CA_CERTS makes every Node.js process
// parse a certificate file before its first line of JavaScript (this VM sets it for npm
// behind its proxy: ~80 ms for its 144 certificates), and NODE_OPTIONS can preload code.
// Either would add the same cost to cvmfs-oci and to the bare `node -e 0` it is compared
// with, hiding cvmfs-oci's own start-up in the ratios, and would add to every publish
// against a floor that runs no Node.js at all. What they cost here is measured and
// reported; then they are removed from this process's environment, which every measured
// command inherits.
import {spawnSync} from 'node:child_process'

import {median} from './measure.mjs'

const VARIABLES = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS']

/** ms of one `node -e 0` in `env`. */
function nodeStart(env) {
  const t0 = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['-e', '0'], {env, stdio: 'ignore'})
  if (r.status !== 0) throw new Error(`node -e 0 exited ${r.status} (${r.error?.message ?? ''})`)
  return Number(process.hrtime.bigint() - t0) / 1e6
}

/**
 * Remove the variables above from `process.env`; returns those that were set, with the
 * medians of `rounds` interleaved runs of `node -e 0` with and without them, and
 * `rounds` (undefined when none was set).
 */
export function freshNodeEnvironment(rounds = 15) {
  const set = VARIABLES.filter((name) => process.env[name] !== undefined && process.env[name] !== '')
  if (set.length === 0) return undefined
  const clean = {...process.env}
  for (const name of set) delete clean[name]
  const withThem = []
  const without = []
  for (let i = 0; i < rounds; i++) {
    withThem.push(nodeStart(process.env))
    without.push(nodeStart(clean))
  }
  for (const name of set) delete process.env[name]
  return {removed: set, withMs: median(withThem), withoutMs: median(without), rounds}
}

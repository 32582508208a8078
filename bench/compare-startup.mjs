#!/usr/bin/env node
// npm run bench:compare [-- --base REF] [--rounds N] [--dir DIR]
//
// The start-up of this checkout's build against another commit's (REF, default HEAD: the
// working tree's changes), side by side. Section 3 of `npm run bench` compares each
// command with `node -e 0`; on these small, noisy machines two of its runs differ by more
// than a change of 1–2 ms, which is what most start-up work is about. Here both builds
// run every command in the same rounds, one after the other (in alternating order), each
// with a code cache of its own, and the result is the median of the per-round differences
// (this checkout − REF): a change shows even when the machine drifts between rounds.
//
// REF is checked out into a temporary worktree that uses this checkout's node_modules and
// is built there; the commands run against one repository (the four-layers image,
// published from a loopback registry by this checkout's build), one wish list and one
// hooks directory, as in section 3. Nothing here decides a result: it only reports.
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'

import {freshNodeEnvironment} from './lib/environment.mjs'
import {writeBenchLayout} from './lib/image.mjs'
import {median} from './lib/measure.mjs'
import {pushLayoutImage, startRegistry} from './lib/registry.mjs'
import {once, startupCases, startupFixtures} from './lib/startup.mjs'

const TOP = join(dirname(fileURLToPath(import.meta.url)), '..')
const {values} = parseArgs({options: {base: {type: 'string'}, rounds: {type: 'string'}, dir: {type: 'string'}}})
const base = values.base ?? 'HEAD'
const rounds = Number(values.rounds ?? 40)
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('bench:compare: --rounds takes a positive whole number')
  process.exit(2)
}
const WARMUP = 2

const environment = freshNodeEnvironment()
if (environment) console.log(`environment: ${environment.removed.join(' and ')} removed for every measured command (as in npm run bench)`)

const work = mkdtempSync(join(values.dir ?? tmpdir(), 'cvmfs-oci-compare-'))
const baseDir = join(work, 'base')
let registry
try {
  const commit = execFileSync('git', ['-C', TOP, 'rev-parse', '--short', `${base}^{commit}`], {encoding: 'utf8'}).trim()
  console.log(`building ${base} (${commit}) in a worktree of its own`)
  execFileSync('git', ['-C', TOP, 'worktree', 'add', '--detach', '--quiet', baseDir, commit])
  symlinkSync(join(TOP, 'node_modules'), join(baseDir, 'node_modules'))
  execFileSync('npm', ['run', '--silent', 'build'], {cwd: baseDir, stdio: ['ignore', 'ignore', 'inherit']})

  registry = await startRegistry()
  const layout = join(work, 'layout')
  await writeBenchLayout(layout, {shape: 'four-layers'})
  const ref = `${registry.address}/bench/four-layers:v1`
  pushLayoutImage(layout, 'v1', ref)
  const repo = join(work, 'repo')
  execFileSync(process.execPath, [join(TOP, 'bin', 'run.js'), 'publish', '-q', '--root', repo, '--tls-verify=false', ref])
  const fixtures = startupFixtures(work, ref)

  // Each build with its own code cache: one cache directory for both would have each run
  // find the other build's cache, refuse it and make its own again.
  const builds = [
    {label: `${base} (${commit})`, cli: join(baseDir, 'bin', 'run.js'), cache: join(work, 'cache-base')},
    {label: 'this checkout', cli: join(TOP, 'bin', 'run.js'), cache: join(work, 'cache-this')},
  ]
  for (const build of builds) mkdirSync(build.cache, {mode: 0o700})
  // The bundled commands (oclif's help and doctor, which runs other programs, take 100+ ms),
  // each as a pair: [REF's, this checkout's].
  const measured = (c) => c.via !== 'oclif' && c.name !== 'node -e 0' && c.name !== 'doctor'
  const perBuild = builds.map((build) => startupCases({cli: build.cli, repo, ref, ...fixtures}).filter(measured).map((c) => ({...c, env: {XDG_CACHE_HOME: build.cache}})))
  const names = perBuild[0].map((c) => c.name)
  const cases = names.map((_, i) => perBuild.map((build) => build[i]))
  const times = cases.map(() => builds.map(() => ({first: [], exit: []})))
  console.log(`${names.length} commands, ${rounds} rounds (after ${WARMUP} that make the code caches), both builds in each round`)
  for (let round = 0; round < WARMUP + rounds; round++) {
    for (const [i, pair] of cases.entries()) {
      // Alternate which build goes first, so that neither always runs in the other's wake.
      const order = round % 2 === 0 ? [0, 1] : [1, 0]
      for (const b of order) {
        const c = pair[b]
        const r = await once(c.argv, c.env)
        if (!(c.ok ?? [0]).includes(r.code)) throw new Error(`${builds[b].label}: ${c.argv.slice(1).join(' ')} exited ${r.code}: ${r.stderr}`)
        if (round < WARMUP) continue
        times[i][b].exit.push(r.exit)
        times[i][b].first.push(r.first)
      }
    }
  }

  const ms = (v) => (v === undefined ? '-' : `${v.toFixed(1)} ms`)
  const seen = (values) => values.filter((v) => v !== undefined)
  // Rounds where both builds have the time (a command with no output has no first output).
  const delta = (a, b) => {
    const pairs = a.flatMap((v, k) => (v === undefined || b[k] === undefined ? [] : [b[k] - v]))
    return pairs.length ? median(pairs) : undefined
  }
  const signed = (v) => (v === undefined ? '-' : `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} ms`)
  console.log(`\nmedians of ${rounds} rounds; Δ = median over the rounds of (this checkout − ${base})`)
  console.log(`${'command'.padEnd(30)}${'first output'.padEnd(36)}${'exit'.padEnd(36)}`)
  console.log(`${''.padEnd(30)}${`${base} → this   Δ`.padEnd(36)}${`${base} → this   Δ`.padEnd(36)}`)
  for (const [i, name] of names.entries()) {
    const [a, b] = times[i]
    const first = seen(a.first).length && seen(b.first).length ? `${ms(median(seen(a.first)))} → ${ms(median(seen(b.first)))}  ${signed(delta(a.first, b.first))}` : '-'
    const exit = `${ms(median(a.exit))} → ${ms(median(b.exit))}  ${signed(delta(a.exit, b.exit))}`
    console.log(`${name.padEnd(30)}${first.padEnd(36)}${exit}`)
  }
} finally {
  registry?.stop()
  try {
    execFileSync('git', ['-C', TOP, 'worktree', 'remove', '--force', baseDir], {stdio: 'ignore'})
  } catch {
    // not made
  }
  rmSync(work, {recursive: true, force: true})
}

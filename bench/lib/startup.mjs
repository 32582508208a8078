// Start-up of every command against a bare `node -e 0`: each command line run `reps`
// times, all of them in rounds (A B C …, A B C …) so that the machine's drift hits every
// one alike. For each run: the time to its first output (a line on stdout or stderr:
// where a command that goes on to fetch or run programs has reached its own work) and to
// its exit. Medians and spread; nothing here decides a result.
import {spawn} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {summary} from './measure.mjs'

/** One run of `argv`: ms to the first byte of output (undefined: none) and to the exit. */
export function once(argv, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const ms = () => Number(process.hrtime.bigint() - t0) / 1e6
    const child = spawn(argv[0], argv.slice(1), {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let first
    let stderr = ''
    const seen = () => (first ??= ms())
    child.stdout.on('data', seen)
    child.stderr.on('data', (d) => {
      seen()
      stderr = (stderr + d).slice(-2000)
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const exit = ms()
      resolve({first, exit, code, stderr})
    })
  })
}

/**
 * The command lines measured. `ok` lists the exit codes expected (the run is an error
 * otherwise); `via` says which path runs it: the command's own bundle, the router's
 * (resolve, --version), or oclif (help).
 */
export function startupCases({cli, repo, ref, wishlist, hooksDir}) {
  // `target`: the ratio the command should stay within (of its first output where it goes
  // on to its own work, of its exit otherwise); doctor's work is running podman, skopeo …
  // and its report comes at the end, so it has none.
  const node = process.execPath
  return [
    {name: 'node -e 0', argv: [node, '-e', '0'], via: '—'},
    {name: 'resolve', argv: [node, cli, 'resolve', '--root', repo, ref], via: 'bundle', target: 1.2},
    {name: '--version', argv: [node, cli, '--version'], via: 'router', target: 2},
    {name: 'list', argv: [node, cli, 'list', '--root', repo], via: 'bundle', target: 1.3},
    {name: 'publish (unchanged image)', argv: [node, cli, 'publish', '--root', repo, '--tls-verify=false', ref], via: 'bundle', firstLine: true, target: 1.3},
    {name: 'sync --dry-run', argv: [node, cli, 'sync', '--dry-run', '--root', repo, wishlist], via: 'bundle', firstLine: true, target: 1.3},
    {name: 'gc --dry-run', argv: [node, cli, 'gc', '--dry-run', '--root', repo], via: 'bundle', target: 1.3},
    {name: 'rm --ignore (not published)', argv: [node, cli, 'rm', '--ignore', '--root', repo, 'bench/none:1'], via: 'bundle', target: 1.3},
    {name: 'doctor', argv: [node, cli, 'doctor', '--hooks-dir', hooksDir, '--root', repo], via: 'bundle', ok: [0, 1]},
    {name: 'hook validate', argv: [node, cli, 'hook', 'validate', hooksDir], via: 'bundle', target: 1.3},
    {name: 'publish --help', argv: [node, cli, 'publish', '--help'], via: 'oclif'},
    {name: 'rm --help', argv: [node, cli, 'rm', '--help'], via: 'oclif'},
  ]
}

/**
 * Measure `cases` (`startupCases`) in `reps` rounds after `warmup` ones; returns, per
 * case, summaries of the time to first output and to exit (ms), their ratios to the first
 * case's (node -e 0) median exit time, and the same ratios paired: the median over the
 * rounds of each run's time over the `node -e 0` run of its own round (this machine drifts
 * between faster and slower periods; a round takes a few seconds, so a pair sees the same
 * period, where a ratio of medians can mix them). The target is judged on both.
 */
export async function commandStartup(cases, {reps = 20, warmup = 2, env = {}} = {}) {
  const runs = cases.map(() => ({first: [], exit: [], pairedFirst: [], pairedExit: []}))
  for (let round = 0; round < warmup + reps; round++) {
    let nodeExit
    for (const [i, c] of cases.entries()) {
      const r = await once(c.argv, env)
      if (!(c.ok ?? [0]).includes(r.code)) throw new Error(`${c.argv.slice(1).join(' ')} exited ${r.code}: ${r.stderr}`)
      if (i === 0) nodeExit = r.exit
      if (round < warmup) continue
      runs[i].exit.push(r.exit)
      runs[i].pairedExit.push(r.exit / nodeExit)
      if (r.first !== undefined) {
        runs[i].first.push(r.first)
        runs[i].pairedFirst.push(r.first / nodeExit)
      }
    }
  }
  const node = summary(runs[0].exit).median
  return cases.map((c, i) => {
    const exit = summary(runs[i].exit)
    const first = runs[i].first.length ? summary(runs[i].first) : undefined
    const ratioExit = exit.median / node
    const ratioFirst = first ? first.median / node : undefined
    const pairedExit = summary(runs[i].pairedExit).median
    const pairedFirst = runs[i].pairedFirst.length ? summary(runs[i].pairedFirst).median : undefined
    const ratio = c.firstLine ? ratioFirst : ratioExit
    const paired = c.firstLine ? pairedFirst : pairedExit
    return {
      name: c.name,
      via: c.via,
      firstLine: Boolean(c.firstLine),
      exit,
      first,
      ratioExit,
      ratioFirst,
      pairedExit,
      pairedFirst,
      target: c.target,
      met: c.target === undefined ? undefined : ratio <= c.target && paired <= c.target,
      metPaired: c.target === undefined ? undefined : paired <= c.target,
    }
  })
}

/** The files the cases need: a wish list of `ref` and a hooks directory with one valid hook file. */
export function startupFixtures(work, ref) {
  const dir = join(work, 'startup')
  const hooksDir = join(dir, 'hooks.d')
  mkdirSync(hooksDir, {recursive: true})
  const wishlist = join(dir, 'wishlist.yaml')
  writeFileSync(wishlist, `version: 1\ncvmfs_repo: unused.example.org\ninput:\n  - http://${ref}\n`)
  writeFileSync(
    join(hooksDir, 'bench.json'),
    JSON.stringify({version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['precreate']}),
  )
  return {wishlist, hooksDir}
}

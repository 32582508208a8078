// Measuring commands: wall time, CPU time and peak RSS of a whole process tree
// (GNU time reports the largest RSS among waited-for children), repeated, with
// medians and spread. Nothing here decides a result: it only reports.
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

const TIME = '/usr/bin/time'

export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function summary(values) {
  return {median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length}
}

/** Peak RSS (VmHWM, KiB) of the first child of process `pid`, 0 when there is none (yet). */
function childPeakKiB(pid) {
  try {
    const child = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0]
    return child ? Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${child}/status`, 'utf8'))?.[1] ?? 0) : 0
  } catch {
    return 0
  }
}

/**
 * Run `argv` under GNU time once; returns {wall, cpu, rssMiB, started, ended} (the
 * last two: epoch ms around the run), with `stderr` too when `keepStderr` is set.
 * GNU time's peak RSS is the largest of the whole process tree; `ownRss` also polls the
 * command's own process (VmHWM, every 100 ms) into `ownRssMiB`. Throws on failure.
 */
export async function timed(argv, {env, cwd, keepStderr, ownRss} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-time-'))
  const out = join(dir, 'time')
  let ownKiB = 0
  try {
    const started = Date.now()
    const stderr = await new Promise((resolve, reject) => {
      const child = spawn(TIME, ['-o', out, '-f', '%e %U %S %M', ...argv], {env: {...process.env, ...env}, cwd, stdio: ['ignore', 'ignore', 'pipe']})
      const poll = ownRss ? setInterval(() => (ownKiB = Math.max(ownKiB, childPeakKiB(child.pid))), 100) : undefined
      child.on('close', () => clearInterval(poll))
      let text = ''
      child.stderr.on('data', (d) => (text = keepStderr ? text + d : (text + d).slice(-4000)))
      child.on('error', reject)
      child.on('close', (c) => (c === 0 ? resolve(text) : reject(new Error(`${argv.join(' ')} exited ${c}: ${text.slice(-2000)}`))))
    })
    const ended = Date.now()
    const [wall, user, sys, rssKiB] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ').map(Number)
    return {wall, cpu: user + sys, rssMiB: rssKiB / 1024, started, ended, ...(keepStderr ? {stderr} : {}), ...(ownRss ? {ownRssMiB: ownKiB / 1024} : {})}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** Repeat `prepare(); timed(argv())` `reps` times; medians of each measure. */
export async function repeat(reps, prepare, argv, options) {
  const runs = []
  for (let i = 0; i < reps; i++) {
    await prepare?.(i)
    runs.push(await timed(typeof argv === 'function' ? argv(i) : argv, options))
  }
  return {wall: summary(runs.map((r) => r.wall)), cpu: summary(runs.map((r) => r.cpu)), rssMiB: summary(runs.map((r) => r.rssMiB))}
}

/**
 * Like `repeat`, for several variants run in rounds (A B C, A B C, …) so that the
 * machine's drift over time hits every variant alike. Returns one summary per variant.
 */
export async function repeatInterleaved(reps, variants, options) {
  const runs = variants.map(() => [])
  for (let i = 0; i < reps; i++) {
    for (const [v, variant] of variants.entries()) {
      await variant.prepare?.(i)
      runs[v].push(await timed(variant.argv, options))
    }
  }
  return runs.map((r) => ({wall: summary(r.map((x) => x.wall)), cpu: summary(r.map((x) => x.cpu)), rssMiB: summary(r.map((x) => x.rssMiB))}))
}

/** Wall time (ms) of a short command, `reps` runs after `warmup`, in-process clock. */
export function startupTimes(argv, {reps = 30, warmup = 3, input, env} = {}) {
  const times = []
  for (let i = 0; i < warmup + reps; i++) {
    const t0 = process.hrtime.bigint()
    const r = spawnSync(argv[0], argv.slice(1), {input, env: {...process.env, ...env}, stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe']})
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`)
    if (i >= warmup) times.push(ms)
  }
  return summary(times)
}

/** Interleave two commands (A B A B …) so drift hits both; per-command wall summaries (ms). */
export function pairedTimes(a, b, {reps = 10, warmup = 2, env} = {}) {
  const ta = []
  const tb = []
  for (let i = 0; i < warmup + reps; i++) {
    for (const [argv, into] of [[a, ta], [b, tb]]) {
      const t0 = process.hrtime.bigint()
      const r = spawnSync(argv[0], argv.slice(1), {env: {...process.env, ...env}, stdio: ['ignore', 'ignore', 'pipe']})
      const ms = Number(process.hrtime.bigint() - t0) / 1e6
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`)
      if (i >= warmup) into.push(ms)
    }
  }
  const diffs = ta.map((t, i) => t - tb[i])
  return {a: summary(ta), b: summary(tb), diff: summary(diffs)}
}

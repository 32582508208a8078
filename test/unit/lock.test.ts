import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, existsSync, openSync, readFileSync} from 'node:fs'
import {mkdir, readFile, rmdir, stat, symlink, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'
import type {Writable} from 'node:stream'

import {beforeEach, describe, expect, it} from 'vitest'

import {acquireLock} from '../../src/backends/lock.js'
import {Logger, silentLogger} from '../../src/log.js'
import {TOP, until} from '../helpers/cli.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

/**
 * Another cvmfs-oci process taking the lock (the built module, as the CLI runs it): it
 * prints "acquired by PID" once it holds the lock, then holds it until killed. Its output
 * goes to a file, which a test can read while its own event loop is blocked.
 */
const TAKER = `
const [lockJs, logJs, path] = process.argv.slice(1)
const {acquireLock} = await import(lockJs)
const {Logger} = await import(logJs)
await acquireLock(path, 'the test repository', 60000, new Logger({stream: process.stdout}))
process.stdout.write('acquired by ' + process.pid + '\\n')
setInterval(() => {}, 1000)
`

interface Taker {
  child: ChildProcess
  output(): string
}

function startTaker(path: string, out: string): Taker {
  if (!existsSync(join(TOP, 'dist/backends/lock.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it) before the tests')
  const fd = openSync(out, 'w')
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', TAKER, join(TOP, 'dist/backends/lock.js'), join(TOP, 'dist/log.js'), path], {stdio: ['ignore', fd, fd]})
    return {child, output: () => readFileSync(out, 'utf8')}
  } finally {
    closeSync(fd)
  }
}

async function kill(taker: Taker, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (taker.child.exitCode !== null || taker.child.signalCode !== null) return
  const exited = new Promise((resolve) => taker.child.once('exit', resolve))
  taker.child.kill(signal)
  await exited
}

/** Block this thread (its event loop too) for `ms`. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** A logger that calls `onLine` with each line, synchronously, as the line is written. */
function hookedLogger(onLine: (line: string) => void): Logger {
  const stream = {write: (line: string) => (onLine(line), true)} as unknown as Writable
  return new Logger({stream, level: 'debug'})
}

describe('repository lock', () => {
  const dir = useTempDir('cvmfs-oci-lock-')
  beforeEach(async () => {
    requireTools('flock')
  })

  it('makes a second taker wait, then fail naming the holder', async () => {
    const path = join(dir(), 'lock')
    const first = await acquireLock(path, 'repo', 0, silentLogger())
    const started = Date.now()
    await expect(acquireLock(path, 'repo', 300, silentLogger())).rejects.toMatchObject({
      code: 'E_LOCKED',
      exitCode: 6,
      message: expect.stringContaining(`process ${process.pid} on ${hostname()}`),
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
    await first.release()
    const second = await acquireLock(path, 'repo', 0, silentLogger())
    await second.release()
  })

  it('gets the lock as soon as the holder releases it', async () => {
    const path = join(dir(), 'lock')
    const first = await acquireLock(path, 'repo', 0, silentLogger())
    setTimeout(() => void first.release(), 200)
    const second = await acquireLock(path, 'repo', 5000, silentLogger())
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
    await second.release()
  })

  it('takes over a lock whose process is gone', async () => {
    const path = join(dir(), 'lock')
    // pid 2^22+1 is above Linux's pid_max default range of live processes here.
    await writeFile(path, JSON.stringify({pid: 4194305, host: hostname(), started: '2020-01-01T00:00:00Z'}))
    const lock = await acquireLock(path, 'repo', 0, silentLogger())
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
    await lock.release()
  })

  it('a taker whose holder leaves (and deletes the file) holds the lock the path names', async () => {
    // The waiter has the old file open when the holder deletes it: it must not end up
    // holding a lock on the deleted file while a newcomer locks a new one.
    const path = join(dir(), 'sub', 'lock')
    const holder = await acquireLock(path, 'repo', 0, silentLogger())
    const waiter = startTaker(path, join(dir(), 'waiter.out'))
    try {
      await until(() => waiter.output().includes('waiting for'), 'the waiter waits', waiter.output)
      expect(waiter.output()).toContain(`waiting for process ${process.pid} on ${hostname()} since `)
      // …blocked on the file the holder is about to delete (the kernel lists it as a waiter).
      const {ino} = await stat(path)
      await until(async () => (await readFile('/proc/locks', 'utf8')).split('\n').some((line) => line.includes('->') && line.includes(`:${ino} `)), 'the waiter blocks on the lock file')
      await holder.release()
      await until(() => waiter.output().includes('acquired'), 'the waiter gets the lock', waiter.output)
      await expect(acquireLock(path, 'repo', 0, silentLogger())).rejects.toMatchObject({
        code: 'E_LOCKED',
        message: expect.stringContaining(`process ${waiter.child.pid} on ${hostname()}`),
      })
    } finally {
      await kill(waiter)
    }
  })

  it('takes the lock while holders leaving remove its directory, at any moment', async () => {
    // A holder leaving removes the lock file, then the directory if it is empty. A taker's
    // recursive mkdir may find the directory and then (Node.js checks that what it found
    // is a directory) find it gone: ENOENT from mkdir itself, which is no error here.
    const sub = join(dir(), 'churn')
    const path = join(sub, 'lock')
    let done = false
    const leaving = (async () => {
      while (!done) {
        await mkdir(sub).catch(() => {})
        await rmdir(sub).catch(() => {})
      }
    })()
    try {
      for (let i = 0; i < 300; i++) await (await acquireLock(path, 'repo', 10_000, silentLogger())).release()
    } finally {
      done = true
      await leaving
    }
  })

  it('refuses a lock directory that cannot be made (a dangling symlink), without looping', async () => {
    const path = join(dir(), 'dangling', 'lock')
    await symlink(join(dir(), 'missing'), join(dir(), 'dangling'))
    await expect(acquireLock(path, 'repo', 0, silentLogger())).rejects.toMatchObject({code: 'E_LOCK_DIR', exitCode: 1, message: expect.stringContaining(path)})
  })

  it('takes over the lock of a killed holder only once, whatever a second taker does meanwhile', async () => {
    const path = join(dir(), 'lock')
    // A holder killed with -9: it never released the lock.
    const dead = startTaker(path, join(dir(), 'dead.out'))
    await until(() => dead.output().includes('acquired'), 'the first holder has the lock', dead.output)
    await kill(dead)

    // Right when this taker says it takes the dead holder's lock over, a second taker
    // (another process) gets every chance to take it too: this one stands still until the
    // second one holds the lock or says it waits.
    let second: Taker | undefined
    const logger = hookedLogger((line) => {
      if (!line.includes('taking over the lock') || second) return
      expect(line).toContain(`left by process ${dead.child.pid}`)
      second = startTaker(path, join(dir(), 'second.out'))
      const deadline = Date.now() + 30_000
      while (!/acquired|waiting for/.test(second.output()) && Date.now() < deadline) sleepSync(20)
    })
    try {
      const first = await acquireLock(path, 'repo', 10_000, logger)
      expect(second, 'the take-over was announced').toBeDefined()
      // Only one wins: the second taker waits for this one.
      expect(second!.output()).not.toContain('acquired')
      expect(second!.output()).toContain(`waiting for process ${process.pid} on ${hostname()}`)
      expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
      await first.release()
      await until(() => second!.output().includes('acquired'), 'the second taker gets the lock once released', second!.output)
    } finally {
      if (second) await kill(second)
    }
  })

  it('holds the lock until the holder ends, however it ends', async () => {
    const path = join(dir(), 'lock')
    const holder = startTaker(path, join(dir(), 'holder.out'))
    await until(() => holder.output().includes('acquired'), 'the holder has the lock', holder.output)
    await expect(acquireLock(path, 'repo', 0, silentLogger())).rejects.toMatchObject({code: 'E_LOCKED'})
    await kill(holder, 'SIGTERM')
    const lines: string[] = []
    const lock = await acquireLock(path, 'repo', 0, hookedLogger((line) => lines.push(line)))
    expect(lines.join('')).toContain(`taking over the lock of repo left by process ${holder.child.pid} on ${hostname()}`)
    await lock.release()
  })
})

/**
 * One lock per repository, so two cvmfs-oci processes never interleave their changes.
 *
 * The lock is the kernel's: flock(2) on the lock file, which the kernel drops when its
 * holder ends, however it ends (kill -9, a crash, a reboot). A lock a dead process left is
 * therefore free at once, and no process ever judges another dead and deletes its lock:
 * there is no take-over to race. Node.js has no flock, so util-linux's flock(1) takes it
 * on our open file (handed to it as its fd 3); the lock belongs to that open file, which
 * stays ours when flock(1) exits.
 *
 * The file also says who holds it, `{pid, host, started}`, for "waiting for process N on
 * HOST since …". Its holder deletes it when done, before letting go of the lock, so a
 * directory repository keeps nothing between runs. A taker that opened the file before
 * that then locks a deleted file: so after locking, a taker checks that the path still
 * names the file it locked (device and inode) and starts over if not. As only a holder
 * deletes the file, no two processes ever hold a lock on what the path names.
 */
import {close, closeSync, constants, fstat, ftruncate, open, rmSync, write} from 'node:fs'
import {hostname} from 'node:os'
import {dirname} from 'node:path'
import {promisify} from 'node:util'

import {BusyError, ExternalError, UserError} from '../errors.js'
import {runBrief} from '../exec.js'
import {mkdir, readFile, rm, stat} from '../fs-promises.js'
import type {Logger} from '../log.js'

/** Who holds a lock (or opened a transaction): written as JSON into the lock file. */
export interface Holder {
  pid: number
  host: string
  started: string
}

export interface Lock {
  release(): Promise<void>
  /** For a signal handler on its way to process.exit. */
  releaseSync(): void
}

/** This process, as a lock holder. */
export function currentHolder(): Holder {
  return {pid: process.pid, host: hostname(), started: new Date().toISOString()}
}

/** Whether a holder on this host is dead (a holder on another host is never known dead). */
export function holderIsGone(holder: Holder): boolean {
  return holder.host === hostname() && !processAlive(holder.pid)
}

/** How a holder is named in messages. */
export function describeHolder(holder: Holder | undefined): string {
  return holder ? `process ${holder.pid} on ${holder.host} since ${holder.started}` : 'another process'
}

/** Whether a process of this machine runs (one of another user's counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The holder recorded in a lock or marker file; `undefined` if absent or unreadable. */
export async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Holder
  } catch {
    return undefined
  }
}

const openFd = promisify(open)
const closeFd = promisify(close)
const fstatFd = promisify(fstat)
const truncateFd = promisify(ftruncate)
const writeFd = promisify(write)

/** flock(1)'s exit code when the lock is taken (`--conflict-exit-code`). */
const TAKEN = 75
/** While waiting, look at who holds the lock this often (seconds): the holder may change. */
const LOOK_EVERY_S = 1
/** …or this often while the holder has not written its name yet. */
const LOOK_SOON_S = 0.05
/** Attempts at making the lock file's directory and opening the file, each undone by a holder leaving. */
const OPEN_ATTEMPTS = 1000
/** How long the holder may stay unnamed before we wait for "another process". */
const UNNAMED_MS = 1000

/**
 * Open (creating) the lock file. A holder leaving removes its directory when empty, at any
 * moment: between our mkdir and open, or inside mkdir itself (Node.js's recursive mkdir
 * checks that a directory it finds is one, and fails with ENOENT if it is gone by then).
 * Either way: make the directory again.
 */
async function openLockFile(path: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dirname(path), {recursive: true})
      return await openFd(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      // Never so often from holders leaving: a path that cannot be made (a dangling symlink).
      if (attempt === OPEN_ATTEMPTS) {
        throw new UserError(`cannot create the lock file ${path}: ${(error as Error).message}`, {
          code: 'E_LOCK_DIR',
          hint: `Make ${dirname(path)} a directory cvmfs-oci can write (is it a symlink to something missing?).`,
        })
      }
    }
  }
}

/** flock(2) the open file `fd`, at once (`waitS` 0) or within `waitS` seconds: whether we got it. */
async function flock(fd: number, path: string, waitS: number): Promise<boolean> {
  const how = waitS > 0 ? ['--timeout', waitS.toFixed(3)] : ['--nonblock']
  try {
    const {exitCode} = await runBrief('flock', ['--exclusive', ...how, '--conflict-exit-code', String(TAKEN), '3'], {
      fd3: fd,
      okExitCodes: [TAKEN],
      missingHint: 'cvmfs-oci takes the repository lock with flock(1): install util-linux.',
    })
    return exitCode === 0
  } catch (error) {
    if (!(error instanceof ExternalError) || error.code === 'E_MISSING_PROGRAM') throw error
    throw new ExternalError(
      `cannot lock ${path}: ${error.message}`,
      {command: error.command, exitCode: error.commandExitCode, stderrTail: error.stderrTail},
      {hint: 'The repository lock is a flock(2) lock: keep the repository (or the state directory) on a file system that supports it (a local one, or NFS with locking).'},
    )
  }
}

/** Whether `path` still names the file open as `fd` (a holder leaving deletes it). */
async function stillNamed(fd: number, path: string): Promise<boolean> {
  const [locked, named] = await Promise.all([fstatFd(fd, {bigint: true}), stat(path, {bigint: true}).catch(() => undefined)])
  return named !== undefined && named.dev === locked.dev && named.ino === locked.ino
}

/** The lock is ours: say so in the file, and hand it out. */
async function take(fd: number, path: string, what: string, logger: Logger): Promise<Lock> {
  // A holder that ended without releasing (killed, crashed) left its name in the file.
  const left = await readHolder(path)
  const me = Buffer.from(JSON.stringify(currentHolder()))
  await truncateFd(fd, 0)
  await writeFd(fd, me, 0, me.length, 0)
  if (left) logger.warn(`taking over the lock of ${what} left by ${describeHolder(left)}, which is gone`)
  let released = false
  return {
    // Delete the file while still holding the lock (see the top of this file), then let go.
    async release() {
      if (released) return
      released = true
      try {
        await rm(path, {force: true})
      } finally {
        await closeFd(fd)
      }
    },
    releaseSync() {
      if (released) return
      released = true
      try {
        rmSync(path, {force: true})
      } finally {
        closeSync(fd)
      }
    },
  }
}

/**
 * Take the lock at `path`, waiting up to `timeoutMs` (0: fail at once), and saying whose
 * turn it waits for (again whenever that changes). `what` names the repository in messages.
 */
export async function acquireLock(path: string, what: string, timeoutMs: number, logger: Logger): Promise<Lock> {
  const deadline = Date.now() + timeoutMs
  let waitS = 0
  let told: string | undefined
  let unnamedSince: number | undefined
  for (;;) {
    const fd = await openLockFile(path)
    let held = false
    try {
      if (await flock(fd, path, waitS)) {
        // Locked a file a leaving holder deleted: start over on the one the path names now,
        // and if someone else took that one, say who (without waiting first).
        if (!(await stillNamed(fd, path))) {
          waitS = 0
          continue
        }
        const lock = await take(fd, path, what, logger)
        held = true
        return lock
      }
    } finally {
      if (!held) await closeFd(fd)
    }
    // A record naming a dead process is one a new holder has not overwritten yet.
    const recorded = await readHolder(path)
    const holder = recorded && !holderIsGone(recorded) ? recorded : undefined
    if (Date.now() >= deadline) {
      throw new BusyError(`${what} is locked by ${describeHolder(holder)} (${path})`, {
        code: 'E_LOCKED',
        hint: 'Wait for it to finish, or raise --lock-timeout.',
      })
    }
    unnamedSince = holder ? undefined : (unnamedSince ?? Date.now())
    const who = holder || Date.now() - unnamedSince! >= UNNAMED_MS ? describeHolder(holder) : told
    if (who !== undefined && who !== told) {
      logger.info(`waiting for ${who}, which holds ${what}`)
      told = who
    }
    waitS = Math.min(who === undefined ? LOOK_SOON_S : LOOK_EVERY_S, Math.max(0.001, (deadline - Date.now()) / 1000))
  }
}

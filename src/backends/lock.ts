/**
 * One lock per repository, so two cvmfs-oci processes never interleave their
 * changes. A lock file created with O_EXCL holds `{pid, host, started}`; a lock
 * left by a dead process on this host is taken over, anything else is waited for
 * (bounded) and then reported with its holder.
 */
import {rmSync} from 'node:fs'
import {mkdir, open, readFile, rm} from 'node:fs/promises'
import {hostname} from 'node:os'
import {dirname} from 'node:path'

import {BusyError} from '../errors.js'
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
  return holder.host === hostname() && !alive(holder.pid)
}

/** How a holder is named in messages. */
export function describeHolder(holder: Holder | undefined): string {
  return holder ? `process ${holder.pid} on ${holder.host} since ${holder.started}` : 'another process'
}

function alive(pid: number): boolean {
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

/**
 * Take the lock at `path`, waiting up to `timeoutMs` (0: fail at once).
 * `what` names the repository in messages.
 */
export async function acquireLock(path: string, what: string, timeoutMs: number, logger: Logger): Promise<Lock> {
  await mkdir(dirname(path), {recursive: true})
  const me = currentHolder()
  const deadline = Date.now() + timeoutMs
  let told = false
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(JSON.stringify(me))
      await handle.close()
      return {release: () => rm(path, {force: true}), releaseSync: () => rmSync(path, {force: true})}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = await readHolder(path)
    if (holder && holderIsGone(holder)) {
      // Only the lock of that dead process: another taker may have replaced it meanwhile.
      const again = await readHolder(path)
      if (again?.pid === holder.pid && again.started === holder.started) {
        logger.warn(`taking over the lock of ${what} left by process ${holder.pid}, which is gone`)
        await rm(path, {force: true})
      }
      continue
    }
    const who = describeHolder(holder)
    if (Date.now() >= deadline) {
      throw new BusyError(`${what} is locked by ${who} (${path})`, {
        code: 'E_LOCKED',
        hint: 'Wait for it to finish, or raise --lock-timeout. If that process is gone for good, delete the lock file.',
      })
    }
    if (!told) {
      logger.info(`waiting for ${who}, which holds ${what}`)
      told = true
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(10, deadline - Date.now()))))
  }
}

/**
 * One lock per repository, so two cvmfs-oci processes never interleave their
 * changes. A lock file created with O_EXCL holds `{pid, host, started}`; a lock
 * left by a dead process on this host is taken over, anything else is waited for
 * (bounded) and then reported with its holder.
 */
import {mkdir, open, readFile, rm} from 'node:fs/promises'
import {hostname} from 'node:os'
import {dirname} from 'node:path'

import {BusyError} from '../errors.js'
import type {Logger} from '../log.js'

interface Holder {
  pid: number
  host: string
  started: string
}

export interface Lock {
  release(): Promise<void>
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
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
  const me: Holder = {pid: process.pid, host: hostname(), started: new Date().toISOString()}
  const deadline = Date.now() + timeoutMs
  let told = false
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o644)
      await handle.writeFile(JSON.stringify(me))
      await handle.close()
      return {release: () => rm(path, {force: true})}
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = await readHolder(path)
    if (holder && holder.host === me.host && !alive(holder.pid)) {
      logger.warn(`taking over the lock of ${what} left by process ${holder.pid}, which is gone`)
      await rm(path, {force: true})
      continue
    }
    const who = holder ? `process ${holder.pid} on ${holder.host} since ${holder.started}` : 'another process'
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

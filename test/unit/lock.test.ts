import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterEach, beforeEach, describe, expect, it} from 'vitest'

import {acquireLock} from '../../src/backends/lock.js'
import {silentLogger} from '../../src/log.js'

describe('repository lock', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cvmfs-oci-lock-'))
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('makes a second taker wait, then fail naming the holder', async () => {
    const path = join(dir, 'lock')
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
    const path = join(dir, 'lock')
    const first = await acquireLock(path, 'repo', 0, silentLogger())
    setTimeout(() => void first.release(), 200)
    const second = await acquireLock(path, 'repo', 5000, silentLogger())
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
    await second.release()
  })

  it('takes over a lock whose process is gone', async () => {
    const path = join(dir, 'lock')
    // pid 2^22+1 is above Linux's pid_max default range of live processes here.
    await writeFile(path, JSON.stringify({pid: 4194305, host: hostname(), started: '2020-01-01T00:00:00Z'}))
    const lock = await acquireLock(path, 'repo', 0, silentLogger())
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
    await lock.release()
  })
})

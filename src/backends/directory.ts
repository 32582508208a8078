/**
 * The directory backend: the repository is a plain directory (a test tree, a
 * staging area rsynced elsewhere, or a CVMFS publisher's own tree fed by other
 * means). Atomicity comes from the layout writer (staging + rename); this backend
 * holds the repository lock (`.cvmfs-oci/lock`, see lock.ts: any number of runs take
 * turns on it) and clears staging left by killed runs.
 */
import {join, resolve} from 'node:path'

import {UserError} from '../errors.js'
import {mkdir, readdir, rm, rmdir, stat} from '../fs-promises.js'
import {STAGING_DIR, WORK_DIR} from '../layout/paths.js'
import type {BackendOptions, RepositoryBackend} from './backend.js'
import {acquireLock, type Lock} from './lock.js'

const LOCK_FILE = join(WORK_DIR, 'lock')

export class DirectoryBackend implements RepositoryBackend {
  readonly description: string
  readonly hardlinkClones = true
  readonly downloadDuringChange = true
  readonly stateDir: string

  private constructor(
    readonly root: string,
    private readonly lock: Lock,
  ) {
    this.description = `directory ${root}`
    this.stateDir = join(root, WORK_DIR)
  }

  /** Open (creating the directory if needed) and lock a directory repository. */
  static async open(rootInput: string, options: BackendOptions): Promise<DirectoryBackend> {
    const root = resolve(rootInput)
    const existing = await stat(root).catch(() => null)
    if (existing && !existing.isDirectory()) {
      throw new UserError(`--root ${root} is not a directory`, {code: 'E_ROOT_NOT_DIR'})
    }
    if (!existing) {
      await mkdir(root, {recursive: true})
      options.logger.info(`created repository directory ${root}`)
    }
    const lock = await acquireLock(join(root, LOCK_FILE), `repository ${root}`, options.lockTimeoutMs, options.logger)
    try {
      // We hold the lock: whatever is in staging was left by a run that died.
      const staging = join(root, STAGING_DIR)
      for (const name of await readdir(staging).catch(() => [] as string[])) {
        options.logger.info(`removing stale staging directory ${name} (left by an interrupted run)`)
        await rm(join(staging, name), {recursive: true, force: true})
      }
    } catch (error) {
      await lock.release()
      throw error
    }
    return new DirectoryBackend(root, lock)
  }

  async change<T>(_paths: string[], change: (root: string) => Promise<T>): Promise<T> {
    return change(this.root)
  }

  async close(): Promise<void> {
    // Leave no trace of our bookkeeping: a repository after a run holds only the layout.
    // Releasing deletes the lock file; a run waiting meanwhile makes both again, so the
    // work directory goes only if it is empty (or gc-marks.json stays in it).
    await rmdir(join(this.root, STAGING_DIR)).catch(() => {})
    await this.lock.release()
    await rmdir(join(this.root, WORK_DIR)).catch(() => {})
  }
}

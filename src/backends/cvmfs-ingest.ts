/**
 * The CVMFS ingest backend (`--ingest`): no transaction mount. A change is made in a
 * private overlay over the read-only `/cvmfs/NAME` (see overlay-mount.ts), then shipped
 * with `cvmfs_server ingest` calls planned from the overlay's upper directory
 * (ingest-plan.ts): deletions, each new flat root as a tar stream into
 * `ingest --catalog -t - -b .flat/<hh>/<hex> -k NAME`, then the metadata and links.
 *
 * Until the first ingest call nothing has reached the repository, so a failure (a hostile
 * layer, a bad DiffID) leaves it as it was. Each ingest call is its own publish: a failure
 * between calls leaves what was already sent (a flat root without its link, which `gc`
 * collects), never a link without its flat root. Needs root (it mounts overlayfs) and room
 * for one unpacked image in the state directory.
 */
import {rmSync} from 'node:fs'
import {mkdir, readdir, rm} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import type {Logger} from '../log.js'
import {ingest} from './cvmfs-server.js'
import {CvmfsBackend, CvmfsRepository, removeWorkDir, type CvmfsOptions} from './cvmfs-repository.js'
import {planIngest} from './ingest-plan.js'
import {holderIsGone} from './lock.js'
import {isMountPoint, mountOverlay, unmount, unmountSync, type OverlayDirs} from './overlay-mount.js'
import {SignalGuard} from './signals.js'
import {packTree} from './tar-pack.js'

const SCRATCH_PREFIX = 'ingest.'

export class CvmfsIngestBackend extends CvmfsBackend {
  private changes = 0

  private constructor(repository: CvmfsRepository) {
    super(repository, 'ingest')
  }

  static async open(name: string, options: CvmfsOptions): Promise<CvmfsIngestBackend> {
    if (process.getuid?.() !== 0) {
      throw new UserError('--ingest needs root: it stages each change in an overlayfs mount over the repository', {
        code: 'E_INGEST_NEEDS_ROOT',
        hint: 'Run as root, or publish through transactions (without --ingest).',
      })
    }
    const repository = await CvmfsRepository.open(name, options)
    try {
      await removeStaleScratch(repository.stateDir, options.logger)
    } catch (error) {
      await repository.release()
      throw error
    }
    return new CvmfsIngestBackend(repository)
  }

  async change<T>(_paths: string[], change: (root: string) => Promise<T>): Promise<T> {
    const scratch = join(this.stateDir, `${SCRATCH_PREFIX}${process.pid}.${++this.changes}`)
    const dirs: OverlayDirs = {lower: this.root, upper: join(scratch, 'upper'), work: join(scratch, 'work'), merged: join(scratch, 'merged')}
    for (const dir of [dirs.upper, dirs.work, dirs.merged]) await mkdir(dir, {recursive: true})
    const guard = new SignalGuard(this.logger, () => {
      if (isMountPoint(dirs.merged)) unmountSync(dirs.merged, this.logger)
      rmSync(scratch, {recursive: true, force: true})
      this.repository.lock.releaseSync()
    })
    try {
      await mountOverlay(dirs, this.logger)
      let result: T
      try {
        result = await change(dirs.merged)
        await removeWorkDir(dirs.merged)
      } finally {
        await unmount(dirs.merged, this.logger)
      }
      await this.send(dirs, guard)
      return result
    } finally {
      guard.dispose(() => this.repository.lock.releaseSync())
      await rm(scratch, {recursive: true, force: true})
    }
  }

  /** Ship the upper directory with ingest calls; a signal stops before the next call. */
  private async send(dirs: OverlayDirs, guard: SignalGuard): Promise<void> {
    const {name} = this.repository
    const steps = await planIngest(dirs.upper, dirs.lower, this.logger)
    if (steps.length === 0) return
    guard.hold()
    await this.repository.markTransaction()
    for (const step of steps) {
      if (guard.signalled) break
      const what = step.send ? `${step.send.base}${step.send.catalog ? ' (nested catalog)' : ''}` : `deleting ${step.delete!.join(', ')}`
      this.logger.debug(`${name}: ingest ${what}`)
      const stream = step.send && packTree(step.send.dir, {exclude: step.send.exclude, logger: this.logger})
      let packError: unknown
      stream?.once('error', (error) => (packError = error))
      try {
        await ingest(name, {delete: step.delete, tar: step.send && {stream: stream!, base: step.send.base, catalog: step.send.catalog}, keepOwnership: step.send !== undefined}, this.logger)
      } catch (error) {
        // A tar cut short makes cvmfs_server fail too: the reason it was cut short is the error.
        throw packError ?? error
      }
    }
    await this.repository.clearMarker()
  }
}

/** Scratch directories of runs that died: unmount their overlay and remove them. */
async function removeStaleScratch(stateDir: string, logger: Logger): Promise<void> {
  for (const entry of await readdir(stateDir).catch(() => [] as string[])) {
    if (!entry.startsWith(SCRATCH_PREFIX)) continue
    const pid = Number.parseInt(entry.slice(SCRATCH_PREFIX.length), 10)
    if (!holderIsGone({pid, host: hostname(), started: ''})) continue
    const merged = join(stateDir, entry, 'merged')
    if (isMountPoint(merged)) await unmount(merged, logger)
    logger.info(`removing ${join(stateDir, entry)} (left by an interrupted run)`)
    await rm(join(stateDir, entry), {recursive: true, force: true})
  }
}

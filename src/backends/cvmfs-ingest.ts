/**
 * The CVMFS ingest backend (`--ingest`): no transaction mount while the layers merge. A
 * change is made in a private overlay over the read-only `/cvmfs/NAME` (see
 * overlay-mount.ts), then shipped with `cvmfs_server ingest` calls planned from the
 * overlay's upper directory (ingest-plan.ts): deletions, each new flat root as a tar
 * stream into `ingest -t - -b .flat/… -k NAME` (its `.cvmfscatalog` in the tar), then the
 * metadata and links. What ingest cannot do goes through short transactions: deleting a
 * path with a `:`, and setting the extended attributes ingest drops (before any link names
 * the flat root).
 *
 * Until the first call nothing has reached the repository, so a failure (a hostile layer, a
 * bad DiffID) leaves it as it was. Each call is its own publish: a failure between calls
 * leaves what was already sent (a flat root without its link, which `gc` collects), never a
 * link without its flat root, nor a flat root without its extended attributes that a later
 * publish could link (it is deleted again; after a kill, by the next run: see
 * cvmfs-repository.ts). Needs root (it mounts overlayfs) and room for one unpacked image in
 * the state directory.
 */
import {rmSync} from 'node:fs'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {UserError} from '../errors.js'
import {mkdir, readdir, rm} from '../fs-promises.js'
import {someOf, type Logger} from '../log.js'
import {applyXattrs, type XattrTable} from '../unpack/xattrs.js'
import {ingest} from './cvmfs-server.js'
import {CvmfsBackend, CvmfsRepository, removeWorkDir, type CvmfsOptions} from './cvmfs-repository.js'
import {inTransaction} from './cvmfs-transaction.js'
import {planIngest} from './ingest-plan.js'
import {holderIsGone} from './lock.js'
import {isMountPoint, mountOverlay, unmount, unmountSync, type OverlayDirs} from './overlay-mount.js'
import {SignalGuard} from './signals.js'
import {packTree} from './tar-pack.js'

const SCRATCH_PREFIX = 'ingest.'
/** The flat root a path is in. */
const FLAT_ROOT = /^\.flat\/[0-9a-f]{2}\/[0-9a-f]{64}(?=\/|$)/

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
      await this.send(dirs, guard, scratch)
      return result
    } finally {
      guard.dispose(() => this.repository.lock.releaseSync())
      await rm(scratch, {recursive: true, force: true})
    }
  }

  /** Ship the upper directory with ingest calls; a signal stops before the next call. */
  private async send(dirs: OverlayDirs, guard: SignalGuard, scratch: string): Promise<void> {
    const {name} = this.repository
    const steps = await planIngest(dirs.upper, dirs.lower, this.logger)
    if (steps.length === 0) return
    guard.hold()
    await this.repository.markTransaction()
    const unfinished = steps.find((step) => step.flatRoots)?.flatRoots
    if (unfinished) await this.repository.markUnfinished(unfinished)
    for (const step of steps) {
      if (guard.signalled) break
      if (step.transaction) {
        await this.transaction(step.transaction, step.flatRoots, scratch)
        continue
      }
      const what = step.send ? step.send.base : `deleting ${step.delete!.join(', ')}`
      this.logger.debug(`${name}: ingest ${what}`)
      let packError: unknown
      const send = step.send
      const open = send && (() => {
        const stream = packTree(send.dir, {exclude: send.exclude, logger: this.logger})
        stream.once('error', (error) => (packError = error))
        return stream
      })
      try {
        await ingest(name, {delete: step.delete, tar: send && {open: open!, base: send.base}, keepOwnership: send !== undefined}, this.logger)
      } catch (error) {
        // A tar cut short makes cvmfs_server fail too: the reason it was cut short is the error.
        throw packError ?? error
      }
    }
    await this.repository.clearMarker()
  }

  /**
   * What ingest cannot do, in one transaction: delete paths with a `:` in them, set the
   * extended attributes ingest dropped. When that fails, the new flat roots whose
   * attributes it was to set are deleted again (no link points to them yet), so that no
   * later publish links a root without them.
   */
  private async transaction(step: {remove: string[]; xattrs: XattrTable}, flatRoots: string[] | undefined, scratch: string): Promise<void> {
    const {name} = this.repository
    const files = [...step.xattrs.keys()].sort()
    if (files.length > 0) this.logger.info(`${name}: setting the extended attributes of ${files.length} file(s) in a transaction (cvmfs_server ingest drops them)`)
    if (step.remove.length > 0) this.logger.debug(`${name}: deleting ${step.remove.join(', ')} in a transaction (cvmfs_server ingest -d cannot name a path with ':')`)
    const table: XattrTable = new Map([...step.xattrs].map(([rel, attrs]) => [join(this.root, rel), attrs]))
    try {
      // Extended attributes are set on the flat roots the files are in: one lease each.
      const scope = files.map((file) => FLAT_ROOT.exec(file)?.[0] ?? file)
      await inTransaction(this.repository, [...step.remove, ...scope], async () => {
        for (const path of step.remove) await rm(join(this.root, path), {recursive: true, force: true})
        await applyXattrs(table, scratch, this.logger)
      })
    } catch (error) {
      if (files.length === 0) throw error
      let removed = false
      if (flatRoots) {
        try {
          await this.repository.markTransaction()
          await ingest(name, {delete: flatRoots}, this.logger)
          await this.repository.clearUnfinished()
          removed = true
        } catch (removeError) {
          this.logger.warn(`could not delete ${flatRoots.join(', ')} again (the next run does): ${(removeError as Error).message}`)
        }
      }
      const shown = someOf(files)
      throw new UserError(`cvmfs_server ingest drops extended attributes, and setting those of ${shown} in a transaction failed: ${(error as Error).message.split('\n')[0]!.replace(/:$/, '')}`, {
        code: 'E_INGEST_XATTRS',
        hint: `${removed ? `Nothing of the image is left published (${flatRoots!.join(', ')} deleted again). ` : ''}Publish this image without --ingest (transactions keep extended attributes), or let this publisher open transactions on ${name}.`,
        cause: error,
      })
    }
    await this.repository.markTransaction()
    if (flatRoots) await this.repository.clearUnfinished()
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

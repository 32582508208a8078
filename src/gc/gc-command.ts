/**
 * `cvmfs-oci gc` as a function: find what nothing references (scan.ts), keep what became
 * unreferenced less than the grace period ago (marks.ts), delete the rest in batches (one
 * repository change each: one cvmfs_server transaction, scoped to the area it touches when
 * it can be; through a gateway, on the whole repository and re-checked inside), pruning the podman store's layers of deleted flat roots in the same change,
 * and report what was (or, with --dry-run, would be) freed.
 */
import {join} from 'node:path'

import {chooseTarget, describeTarget, openBackend, readOnlyBackend, type TargetOptions} from '../backends/open.js'
import {lstat} from '../fs-calls.js'
import {removeAndPrune} from '../layout/remove.js'
import {formatBytes, type Logger} from '../log.js'
import {PODMAN_STORE_DIR} from '../podman-store/paths.js'
import {updatePodmanStore} from '../podman-store/store.js'
import {formatDuration} from './duration.js'
import {readMarks, writeMarks} from './marks.js'
import {findGarbage, type Garbage} from './scan.js'

export interface GcOptions extends TargetOptions {
  gracePeriodMs: number
  /** Report only (--dry-run); absent, as the flag not given, means delete. */
  dryRun?: boolean
  /** Paths deleted per repository change. */
  batchSize: number
  lockTimeoutMs: number
  logger: Logger
}

export interface GcItem extends Garbage {
  /** When gc first found it unreferenced. */
  unreferencedSince: string
}

export interface GcResult {
  repository: string
  /** Absent unless --dry-run. */
  dryRun?: boolean
  gracePeriod: string
  /** Deleted (with --dry-run: would be deleted). */
  deleted: GcItem[]
  /** Unreferenced, but for less than the grace period. */
  kept: GcItem[]
  freedBytes: number
  /** Repository changes made (cvmfs_server transactions with --repo). */
  changes: number
}

export async function gcCommand(options: GcOptions): Promise<GcResult> {
  const {logger} = options
  const target = chooseTarget(options)
  const backend = options.dryRun ? readOnlyBackend(target) : await openBackend(target, {logger, lockTimeoutMs: options.lockTimeoutMs})
  const result: GcResult = {
    repository: describeTarget(target),
    dryRun: options.dryRun,
    gracePeriod: formatDuration(options.gracePeriodMs),
    deleted: [],
    kept: [],
    freedBytes: 0,
    changes: 0,
  }
  try {
    const now = Date.now()
    const [marks, found, store] = await Promise.all([
      readMarks(backend.stateDir),
      findGarbage(backend.root),
      lstat(join(backend.root, PODMAN_STORE_DIR)).then(() => true, () => false),
    ])
    for (const garbage of found) {
      const item: GcItem = {...garbage, unreferencedSince: marks.get(garbage.path) ?? new Date(now).toISOString()}
      const due = now - Date.parse(item.unreferencedSince) >= options.gracePeriodMs
      ;(due ? result.deleted : result.kept).push(item)
    }
    for (let start = 0; !options.dryRun && start < result.deleted.length; start += options.batchSize) {
      const batch = result.deleted.slice(start, start + options.batchSize)
      const names = batch.flatMap((item) => (item.name ? [item.name] : []))
      const touchesStore = store && batch.some((item) => item.kind === 'flat' || item.name)
      let paths = batch.map((item) => item.path)
      // Through a gateway others publish meanwhile, and what they link lives elsewhere than
      // what gc deletes: a batch holds the whole repository's lease, and deletes only what
      // is still unreferenced in the newest revision.
      const scope = backend.concurrentPublishers ? [''] : touchesStore ? [...paths, PODMAN_STORE_DIR] : paths
      await backend.change(scope, async (root) => {
        if (backend.concurrentPublishers) {
          const still = new Set((await findGarbage(root)).map((garbage) => garbage.path))
          const gone = paths.filter((path) => !still.has(path))
          if (gone.length > 0) logger.info(`kept ${gone.join(', ')}: referenced again (by another publisher)`)
          paths = paths.filter((path) => still.has(path))
        }
        for (const path of paths) await removeAndPrune(root, path)
        // Drops removed names, and the layers whose flat root is now gone.
        if (touchesStore) await updatePodmanStore(root, {remove: names}, logger)
      })
      result.changes++
    }
    // The clocks of what stays keep running; what was deleted (or re-linked) is forgotten.
    if (!options.dryRun) await writeMarks(backend.stateDir, new Map(result.kept.map((item) => [item.path, item.unreferencedSince])))
  } finally {
    await backend.close()
  }
  result.freedBytes = result.deleted.reduce((sum, item) => sum + item.bytes, 0)
  report(result, logger)
  return result
}

function report(result: GcResult, logger: Logger): void {
  const verb = result.dryRun ? 'would delete' : 'deleted'
  for (const item of result.deleted) logger.info(`${verb} ${item.path} (${kindLabel[item.kind]}, ${formatBytes(item.bytes)}, unreferenced since ${item.unreferencedSince})`)
  for (const item of result.kept) logger.info(`kept ${item.path} (${kindLabel[item.kind]}, unreferenced since ${item.unreferencedSince}, grace period ${result.gracePeriod})`)
  const counts = Object.entries(kindLabel)
    .map(([kind, label]) => [result.deleted.filter((i) => i.kind === kind).length, label] as const)
    .filter(([n]) => n > 0)
    .map(([n, label]) => `${n} ${label}(s)`)
  logger.info(
    `gc ${result.repository}: ${verb} ${counts.length ? counts.join(', ') : 'nothing'}, ${formatBytes(result.freedBytes)}` +
      (result.dryRun ? '' : ` in ${result.changes} change(s)`) +
      (result.kept.length ? `; kept ${result.kept.length} unreferenced item(s) younger than the grace period (${result.gracePeriod})` : ''),
  )
}

const kindLabel: Record<Garbage['kind'], string> = {
  metadata: 'metadata of a removed name',
  flat: 'flat root',
  'flat-record': 'flat root record',
  chain: 'layer-stack index entry',
  blob: 'manifest/config blob',
  layer: 'DUCC layer',
}

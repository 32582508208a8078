/**
 * Live progress of one image's publish on a terminal, as podman pull shows its own:
 * one line, redrawn in place, with the bytes downloaded and merged, their rates and
 * the layer being merged —
 *
 *   127.0.0.1:5000/app:1: downloaded 41.2 / 64.2 MB (102 MB/s) · merged 20.1 / 64.2 MB, layer 2/4 (38.0 MB/s)
 *
 * Only where the logger is live (a terminal, not --quiet, not --json); elsewhere
 * every call returns at once and nothing is polled. Download bytes are what skopeo
 * has written into its destination so far (it writes each blob under a temporary
 * name and renames it), read every 200 ms.
 */
import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

import {formatBytes, type Logger} from '../log.js'

/** Redraws at most this often (state changes draw at once). */
const REDRAW_MS = 100
const POLL_MS = 200

interface Phase {
  bytes: number
  total?: number
  started: number
  done: boolean
}

export class PublishProgress {
  private download: Phase | undefined
  private merge: (Phase & {layer: number; layers: number}) | undefined
  private drawn = 0

  constructor(
    private readonly logger: Logger,
    private readonly label: string,
  ) {}

  get live(): boolean {
    return this.logger.live
  }

  /**
   * Follow a download into `dir` until the returned function is called (with whether
   * the download completed): `total` is
   * what it will bring (unknown where the manifest is not known yet), `exclude` the
   * names of files that are in `dir` already (placeholders of blobs not fetched).
   */
  watchDownload(dir: string, total: number | undefined, exclude: ReadonlySet<string> = new Set()): (completed: boolean) => void {
    if (!this.live) return () => {}
    this.download = {bytes: 0, total, started: Date.now(), done: false}
    this.draw(true)
    const poll = () => {
      const bytes = bytesIn(dir, exclude)
      this.download!.bytes = total === undefined ? bytes : Math.min(bytes, total)
      this.draw(false)
    }
    const timer = setInterval(poll, POLL_MS)
    timer.unref()
    return (completed) => {
      clearInterval(timer)
      if (!completed) return
      poll()
      this.download!.done = true
      if (this.download!.total !== undefined) this.download!.bytes = this.download!.total
      this.draw(true)
    }
  }

  /** The merge took `bytes` more of the compressed layers (`total` in all); it is at layer `layer` of `layers`. */
  merged(bytes: number, total: number, layer: number, layers: number): void {
    if (!this.live) return
    const fresh = this.merge === undefined || this.merge.layer !== layer
    this.merge ??= {bytes: 0, total, started: Date.now(), done: false, layer, layers}
    this.merge.bytes += bytes
    this.merge.layer = layer
    this.draw(fresh)
  }

  /** Erase the line (the publish logs its own result). */
  end(): void {
    if (this.live) this.logger.clearProgress()
  }

  /** The line as it is drawn now. */
  line(now = Date.now()): string {
    const parts: string[] = []
    const rate = (phase: Phase) => {
      const seconds = (now - phase.started) / 1000
      return seconds > 0.05 ? ` (${formatBytes(phase.bytes / seconds)}/s)` : ''
    }
    const amount = (phase: Phase) => (phase.total === undefined ? formatBytes(phase.bytes) : `${formatBytes(phase.bytes)} / ${formatBytes(phase.total)}`)
    const {download, merge} = this
    if (download) parts.push(download.done ? `downloaded ${formatBytes(download.bytes)}` : `downloaded ${amount(download)}${rate(download)}`)
    if (merge) parts.push(`merged ${amount(merge)}, layer ${merge.layer}/${merge.layers}${rate(merge)}`)
    return `${this.label}: ${parts.join(' · ')}`
  }

  private draw(force: boolean): void {
    const now = Date.now()
    if (!force && now - this.drawn < REDRAW_MS) return
    this.drawn = now
    this.logger.progress(this.line(now))
  }
}

/** Bytes of the files below `dir` (two levels: an OCI layout's blobs), but those in `exclude`. */
function bytesIn(dir: string, exclude: ReadonlySet<string>, depth = 0): number {
  let bytes = 0
  let entries
  try {
    entries = readdirSync(dir, {withFileTypes: true})
  } catch {
    return 0 // not made yet
  }
  for (const entry of entries) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      if (depth < 2) bytes += bytesIn(path, exclude, depth + 1)
    } else if (entry.isFile() && !exclude.has(entry.name)) {
      // A temporary file may be renamed between readdir and stat.
      bytes += statSync(path, {throwIfNoEntry: false})?.size ?? 0
    }
  }
  return bytes
}

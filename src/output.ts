/**
 * Writing to stdout and stderr without Node.js's streams. Making `process.stdout` or
 * `process.stderr` builds Node.js's stream machinery: ~4 ms of a start-up that precedes
 * every container start (`resolve`, the hook), and of every command's (measured on
 * Node.js 20), for a few lines. These write straight to the descriptor instead, in
 * order with anything written through the streams (which are synchronous on Linux for
 * files, pipes and terminals).
 */
import {fstatSync, writeSync} from 'node:fs'

export interface Output {
  write(text: string | Uint8Array): void
}

/**
 * Lines to descriptor 1 or 2. A closed pipe (`| head`) is not an error, as oclif treats
 * stdout; should the descriptor refuse to block (a full non-blocking pipe), the rest goes
 * through the stream after all.
 */
export function fdOutput(fd: 1 | 2): Output {
  return {
    write(text) {
      let rest = typeof text === 'string' ? Buffer.from(text) : Buffer.from(text.buffer, text.byteOffset, text.byteLength)
      try {
        while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest))
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EPIPE') return
        if (code !== 'EAGAIN') throw error
        ;(fd === 1 ? process.stdout : process.stderr).write(rest)
      }
    },
  }
}

/** What a Logger writes to: a terminal's width and whether it is one, where it is. */
export interface LogSink extends Output {
  isTTY?: boolean
  columns?: number
}

/**
 * Linux's memory devices (/dev/null, /dev/zero, …): character devices, never a terminal.
 * The major number of a device as Linux encodes it in st_rdev (majors below 4096).
 */
const MEMORY_DEVICES_MAJOR = 1
const major = (rdev: number) => Math.floor(rdev / 256) & 0xfff

/**
 * stderr for a Logger: the stream where it may be a terminal (a character device: live
 * progress lines need its width), the descriptor otherwise (a pipe, a file or /dev/null,
 * as in every unattended run: `>/dev/null 2>&1` from cron, systemd's StandardError=null).
 */
export function stderrSink(): LogSink {
  let terminal = true
  try {
    const stats = fstatSync(2)
    terminal = stats.isCharacterDevice() && major(stats.rdev) !== MEMORY_DEVICES_MAJOR
  } catch {
    // fstat failed (a closed descriptor): the stream decides, as before.
  }
  return terminal ? process.stderr : {...fdOutput(2), isTTY: false}
}

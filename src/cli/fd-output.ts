/**
 * Output of the router's own commands (`resolve`, `--version`), written straight to the
 * file descriptor. Making `process.stdout` builds Node.js's stream machinery, ~4 ms of a
 * start-up that precedes every container start (measured on Node.js 20), for one line.
 * Should the descriptor refuse to block (a full non-blocking pipe), the rest goes
 * through the stream after all.
 */
import {writeSync} from 'node:fs'

export interface Output {
  write(text: string): void
}

export function fdOutput(fd: 1 | 2): Output {
  return {
    write(text) {
      let rest = Buffer.from(text)
      try {
        while (rest.length > 0) rest = rest.subarray(writeSync(fd, rest))
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error
        ;(fd === 1 ? process.stdout : process.stderr).write(rest)
      }
    },
  }
}

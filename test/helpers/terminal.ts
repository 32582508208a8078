/**
 * Run a command on a real pseudo-terminal (util-linux's `script`), and read back what
 * its user saw: the final screen (carriage returns, erase-line and newlines applied)
 * and the lines drawn in place on the way there.
 */
import {spawn} from 'node:child_process'

import {requireTools} from './tools.js'

/** The raw output of `argv` run on a pseudo-terminal `columns` wide, and its exit code. */
export async function runOnTerminal(argv: string[], options: {columns: number; env?: Record<string, string>}): Promise<{raw: string; exitCode: number}> {
  requireTools('script', 'stty')
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  const child = spawn('script', ['--quiet', '--flush', '--return', '--command', `stty cols ${options.columns} rows 50; exec ${quoted}`, '/dev/null'], {
    env: {...process.env, ...options.env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let raw = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk))
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve(code ?? -1))
  })
  return {raw, exitCode}
}

/** The screen a terminal shows after `raw`: `\r` to the line's start, `ESC[K` erases to its end. */
export function finalScreen(raw: string): string[] {
  const lines: string[] = []
  let line = ''
  let column = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!
    if (c === '\n') {
      lines.push(line)
      line = ''
      column = 0
    } else if (c === '\r') column = 0
    else if (raw.startsWith('\x1b[K', i)) {
      line = line.slice(0, column)
      i += 2
    } else {
      line = line.slice(0, column) + c + line.slice(column + 1)
      column++
    }
  }
  if (line) lines.push(line)
  return lines
}

/**
 * The lines drawn in place, as they were drawn: what follows a `\r ESC[K` up to the
 * next one without a newline (a logged line ends with one).
 */
export function drawnInPlace(raw: string): string[] {
  return raw
    .split('\r\x1b[K')
    .slice(1)
    .filter((part) => part !== '' && !part.includes('\n'))
}

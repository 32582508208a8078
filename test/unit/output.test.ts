/**
 * src/output.ts: lines written straight to descriptors 1 and 2, without Node.js's
 * streams. Run in child processes of the built module, where the descriptors are real
 * pipes: everything arrives, in order with what the streams write, whatever its size;
 * a reader that went away (`| head`) is no error; a Logger on a pipe or /dev/null writes
 * through the descriptor, on a terminal through the stream.
 */
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {TOP} from '../helpers/cli.js'
import {exec} from '../helpers/exec.js'
import {runOnTerminal} from '../helpers/terminal.js'

const OUTPUT = join(TOP, 'dist/output.js')
const LOG = join(TOP, 'dist/log.js')

/** An ES module that imports the built output.js as `out`, then runs `code`. */
const withOutput = (code: string) => `import * as out from ${JSON.stringify(OUTPUT)}; ${code}`

/** Run `code` with the built output.js imported as `out`. */
const run = (code: string) => exec(process.execPath, ['--input-type=module', '-e', withOutput(code)], {reject: false})

/** A module that makes a Logger, logs a line, and prints what its default stderr is. */
const LOGGER_PROBE = `import {Logger} from ${JSON.stringify(LOG)}; const l = new Logger(); l.info('a line'); process.stdout.write(JSON.stringify({tty: Boolean(l.stream.isTTY), live: l.live, stream: l.stream === process.stderr}) + '\\n')`

describe('fdOutput', () => {
  it('writes all of a text larger than a pipe holds, in order with the streams', async () => {
    const r = await run(`process.stdout.write('first\\n'); out.fdOutput(1).write('x'.repeat(1 << 20) + '\\n'); process.stdout.write('last\\n'); out.fdOutput(2).write('to stderr\\n')`)
    expect(r.exitCode, r.stderr).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines.map((line) => (line.startsWith('x') ? `${line.length} x` : line))).toEqual(['first', `${1 << 20} x`, 'last', ''])
    expect(r.stderr).toBe('to stderr\n')
  })

  it('writes bytes as given', async () => {
    const r = await run(`out.fdOutput(1).write(new Uint8Array([0x68, 0x69, 0x0a]).subarray(1)); out.fdOutput(1).write(Buffer.from('ok'))`)
    expect(r.stdout).toBe('i\nok')
  })

  it('takes a reader that went away as no error', async () => {
    const code = withOutput(`for (let i = 0; i < 64; i++) out.fdOutput(1).write('y'.repeat(65536)); out.fdOutput(2).write('done\\n')`)
    const r = await exec('bash', ['-c', 'set -o pipefail; "$0" --input-type=module -e "$1" | head -c 1 >/dev/null', process.execPath, code], {reject: false})
    // 4 MiB into a pipe whose reader left after one byte: the writer went on after EPIPE
    // and exited 0 (pipefail: the status is the writer's).
    expect(r.stderr).toBe('done\n')
    expect(r.exitCode).toBe(0)
  })
})

describe("a Logger's default stderr", () => {
  it('on a pipe: the descriptor, no terminal, no stream made', async () => {
    const r = await exec(process.execPath, ['--input-type=module', '-e', LOGGER_PROBE], {reject: false})
    expect(r.stderr).toBe('a line\n')
    expect(JSON.parse(r.stdout)).toEqual({tty: false, live: false, stream: false})
  })

  it('on /dev/null (a character device, no terminal): the descriptor, no stream made', async () => {
    const r = await exec('bash', ['-c', '"$0" --input-type=module -e "$1" 2>/dev/null', process.execPath, LOGGER_PROBE], {reject: false})
    expect(r.exitCode, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({tty: false, live: false, stream: false})
  })

  it('on a terminal: the stream (its width, live progress)', async () => {
    const r = await runOnTerminal([process.execPath, '--input-type=module', '-e', LOGGER_PROBE], {columns: 80})
    expect(r.exitCode, r.raw).toBe(0)
    // The terminal shows the line, then what the probe printed (on a terminal, \r\n ends a line).
    const [line, probe] = r.raw.trim().split(/\r?\n/)
    expect(line).toBe('a line')
    expect(JSON.parse(probe!)).toEqual({tty: true, live: true, stream: true})
  })
})

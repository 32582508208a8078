/**
 * src/exec.ts: `run` (execa) and `runBrief` (Node's own spawn, for short programs on the
 * way to a command's first request) give the same results and the same errors, and
 * both stop a program when their signal fires.
 */
import {describe, expect, it} from 'vitest'

import {ExternalError} from '../../src/errors.js'
import {run, runBrief} from '../../src/exec.js'

const BYTES = Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x7d])

describe.each([
  ['run', run],
  ['runBrief', runBrief],
] as const)('%s', (_name, runner) => {
  it('keeps stdout byte for byte with binaryStdout', async () => {
    const octal = [...BYTES].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')
    const result = await runner('sh', ['-c', `printf '${octal}'; printf 'said\\n' >&2`], {binaryStdout: true})
    expect(result.stdoutBytes).toEqual(BYTES)
    expect(result.stderr).toBe('said\n')
    expect(result.exitCode).toBe(0)
  })

  it('names the command, its exit code and what it said, stdout then stderr', async () => {
    const error = await runner('sh', ['-c', 'echo out; echo err >&2; exit 3']).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ExternalError)
    expect((error as ExternalError).message).toBe("sh -c 'echo out; echo err >&2; exit 3' exited with code 3:\n  out\n  err")
    expect((error as ExternalError).commandExitCode).toBe(3)
  })

  it('accepts the exit codes it is told are no failure', async () => {
    expect((await runner('sh', ['-c', 'exit 1'], {okExitCodes: [1]})).exitCode).toBe(1)
  })

  it('says how to install a program that is not there', async () => {
    const error = await runner('cvmfs-oci-no-such-program', [], {missingHint: 'Install it from the kit.'}).catch((e: unknown) => e)
    expect(error).toMatchObject({code: 'E_MISSING_PROGRAM', hint: 'Install it from the kit.'})
  })

  it('gives the program end-of-file on stdin (a question it asks is answered at once)', async () => {
    const result = await runner('sh', ['-c', 'if read -r answer; then echo "read $answer"; else echo eof; fi'])
    expect(result.stdout).toBe('eof\n')
  })

  it('adds `env` to the environment (what getfattr gets: LC_ALL=C, PATH kept)', async () => {
    const result = await runner('sh', ['-c', 'echo "$CVMFS_OCI_TEST_ENV:${PATH:+has PATH}"'], {env: {CVMFS_OCI_TEST_ENV: 'C'}})
    expect(result.stdout).toBe('C:has PATH\n')
  })

  it('stops the program when its signal fires', async () => {
    const stop = new AbortController()
    const started = Date.now()
    const running = runner('sleep', ['30'], {signal: stop.signal})
    setTimeout(() => stop.abort(new Error('not needed any more')), 200)
    await expect(running).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})

describe('runBrief', () => {
  it('does not start a program whose signal has fired', async () => {
    const stop = new AbortController()
    stop.abort(new Error('stopped before'))
    await expect(runBrief('sh', ['-c', 'exit 0'], {signal: stop.signal})).rejects.toThrow('stopped before')
  })
})

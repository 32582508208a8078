/**
 * Progress as a user sees it: on a terminal (a real pseudo-terminal, util-linux's
 * `script`) publish draws one line in place with the bytes downloaded and merged and
 * the layer being merged, and erases it, so that the screen ends with the same lines
 * an unattended run logs; unattended runs (no terminal, --quiet, --json) draw nothing.
 */
import {randomBytes} from 'node:crypto'
import {rm} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {BIN, cli} from '../helpers/cli.js'
import {pushImage} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {drawnInPlace, finalScreen, runOnTerminal} from '../helpers/terminal.js'
import {requireTools} from '../helpers/tools.js'

/** The run-dependent part of the result line, `(1.2 MB, 0.8 s)`. */
const normalise = (lines: string[]) => lines.map((line) => line.replace(/, [\d.]+ s\)$/, ', N s)'))

describe('progress on a terminal', () => {
  const work = useTempDir('cvmfs-oci-progress-', 'all')
  let ref: string
  const env = {CVMFS_OCI_CONFIG: '/nonexistent/cvmfs-oci-config.json', CVMFS_OCI_ROOTS: ''}
  const publish = (repo: string, ...flags: string[]) => [process.execPath, BIN, 'publish', '--root', repo, '--tls-verify=false', ...flags, ref]

  beforeAll(async () => {
    requireTools('skopeo', 'script', 'stty')
    // Three layers of incompressible data: each one a few frames' worth.
    const layer = (n: number) => ({entries: [{name: `data${n}/`, type: 'directory' as const}, {name: `data${n}/blob`, content: randomBytes(3 << 20)}]})
    ref = await pushImage(work(), {layers: [layer(1), layer(2), layer(3)]}, 'progress/three:1')
  })

  it('draws downloaded and merged bytes and the layer in place, and leaves the lines of an unattended run', async () => {
    const repo = join(work(), 'repo')
    const tty = await runOnTerminal(publish(repo), {columns: 200, env})
    expect(tty.exitCode, tty.raw).toBe(0)
    const frames = drawnInPlace(tty.raw)
    const total = /: downloaded 0 B \/ (\S+ \S?B)$/.exec(frames[0] ?? '')?.[1] ?? 'no total in the first frame'
    expect(frames).toContain(`${ref}: downloaded 0 B / ${total}`)
    const t = total.replace('.', '\\.')
    // Done: the total alone (the merge may have finished before skopeo did).
    expect(frames.some((frame) => new RegExp(`: downloaded ${t}( ·|$)`).test(frame)), frames.join('\n')).toBe(true)
    for (const layer of [1, 2, 3]) {
      expect(frames.some((frame) => new RegExp(`merged \\S+ \\S?B / ${t}, layer ${layer}/3`).test(frame)), `layer ${layer}: ${frames.join('\n')}`).toBe(true)
    }
    // (The rates are in test/unit/progress.test.ts: a fast machine may draw none here.)

    // The screen keeps what an unattended run logs, and no progress.
    await rm(repo, {recursive: true, force: true})
    const plain = await cli(publish(repo).slice(2), {env})
    expect(plain.exitCode, plain.stderr).toBe(0)
    expect(plain.stderr).not.toMatch(/[\r\x1b]/)
    const screen = finalScreen(tty.raw).filter((line) => line !== '')
    expect(normalise(screen)).toEqual(normalise(plain.stderr.trimEnd().split('\n')))
    expect(screen.some((line) => line.includes('merged'))).toBe(false)
  })

  it('cuts the line to the width of the terminal', async () => {
    const tty = await runOnTerminal(publish(join(work(), 'narrow')), {columns: 50, env})
    expect(tty.exitCode, tty.raw).toBe(0)
    const frames = drawnInPlace(tty.raw)
    expect(frames.length).toBeGreaterThan(0)
    for (const frame of frames) expect(frame.length, frame).toBeLessThanOrEqual(49)
    expect(frames.some((frame) => frame.endsWith('…'))).toBe(true)
  })

  it.each([['--quiet'], ['--json']])('draws nothing with %s, even on a terminal', async (flag) => {
    const tty = await runOnTerminal(publish(join(work(), `repo${flag}`), flag), {columns: 200, env})
    expect(tty.exitCode, tty.raw).toBe(0)
    expect(tty.raw).not.toContain('\x1b[K')
    expect(tty.raw).not.toContain('merged')
    if (flag === '--json') expect(tty.raw).toContain('"status": "published"')
  })
})

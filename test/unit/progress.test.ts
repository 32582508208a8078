/** The live progress line: what it says, when it draws, and that it draws nothing unattended. */
import {Writable} from 'node:stream'

import {describe, expect, it} from 'vitest'

import {Logger} from '../../src/log.js'
import {PublishProgress} from '../../src/publish/progress.js'

function terminal(columns = 200): {logger: Logger; written: () => string} {
  let text = ''
  const stream = Object.assign(new Writable({write: (chunk, _encoding, done) => ((text += String(chunk)), done())}), {isTTY: true, columns})
  return {logger: new Logger({stream}), written: () => text}
}

describe('the progress line', () => {
  it('shows bytes, totals, rates and the layer', () => {
    const {logger} = terminal()
    const progress = new PublishProgress(logger, 'reg/app:1')
    const start = Date.now()
    progress.merged(0, 64_000_000, 1, 4)
    progress.merged(16_000_000, 64_000_000, 2, 4)
    expect(progress.line(start + 2000)).toMatch(/^reg\/app:1: merged 16\.0 MB \/ 64\.0 MB, layer 2\/4 \((7\.\d|8\.0) MB\/s\)$/)
  })

  it('draws at once when the layer changes, at most every 100 ms otherwise', () => {
    const {logger, written} = terminal()
    const progress = new PublishProgress(logger, 'x')
    for (let i = 0; i < 50; i++) progress.merged(1000, 100_000, 1, 2)
    progress.merged(1000, 100_000, 2, 2)
    const frames = written().split('\r\x1b[K').filter(Boolean)
    expect(frames.length).toBeLessThanOrEqual(3)
    expect(frames[0]).toContain('layer 1/2')
    expect(frames.at(-1)).toContain('merged 51.0 kB / 100.0 kB, layer 2/2')
  })

  it('cuts the line to the terminal width', () => {
    const {logger, written} = terminal(30)
    new PublishProgress(logger, 'a-rather-long-registry.example.org/group/image:1').merged(1, 2, 1, 1)
    expect(written()).toBe('\r\x1b[Ka-rather-long-registry.examp…')
  })

  it('draws nothing unattended (no terminal, --quiet, --json) and polls nothing', () => {
    const sink = () => Object.assign(new Writable({write: (_c, _e, done) => done()}), {isTTY: true})
    for (const logger of [new Logger({stream: new Writable({write: (_c, _e, done) => done()})}), new Logger({stream: sink(), level: 'warn'}), new Logger({stream: sink(), live: false})]) {
      const progress = new PublishProgress(logger, 'x')
      expect(progress.live).toBe(false)
      const stop = progress.watchDownload('/nonexistent', 10)
      progress.merged(1, 2, 1, 1)
      stop(true)
      expect(progress.line()).toBe('x: ')
    }
  })
})

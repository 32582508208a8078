/**
 * Durations as people write them on a command line: `0`, `90s`, `15m`, `36h`, `7d`, `2w`,
 * and sums such as `1d12h`. A bare number counts seconds. Pure.
 */
import {UsageError} from '../errors.js'

const UNIT_SECONDS: Record<string, number> = {s: 1, m: 60, h: 3600, d: 86_400, w: 604_800}
const PART = /(\d+(?:\.\d+)?)([smhdw])/g

/**
 * Parse a duration into milliseconds.
 *
 * @throws UsageError `E_BAD_DURATION` naming the input and the accepted forms.
 */
export function parseDuration(input: string, flag = '--grace-period'): number {
  const text = input.trim().toLowerCase()
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000
  const parts = [...text.matchAll(PART)]
  if (text === '' || parts.map((p) => p[0]).join('') !== text) {
    throw new UsageError(`${flag} ${JSON.stringify(input)} is not a duration`, {
      code: 'E_BAD_DURATION',
      hint: 'Write a number followed by s, m, h, d or w (e.g. 90s, 36h, 7d, 1d12h); 0 means no grace.',
    })
  }
  return parts.reduce((sum, [, value, unit]) => sum + Number(value) * UNIT_SECONDS[unit!]! * 1000, 0)
}

/** The largest whole units of a duration: `7d`, `36h`, `0s`. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000)
  for (const unit of ['d', 'h', 'm'] as const) {
    if (seconds >= UNIT_SECONDS[unit]! && seconds % UNIT_SECONDS[unit]! === 0) return `${seconds / UNIT_SECONDS[unit]!}${unit}`
  }
  return `${seconds}s`
}

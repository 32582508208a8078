/**
 * podman compiles hook regexes with Go's regexp (RE2). JavaScript has no RE2, so a
 * pattern is checked in two steps: constructs RE2 refuses (lookaround,
 * backreferences) are reported, RE2-only syntax is translated to JavaScript's
 * ((?P<name>, inline flags, \A, \z, POSIX classes), and the result must compile.
 */

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z', alpha: 'A-Za-z', ascii: '\\x00-\\x7F', blank: '\\t ', cntrl: '\\x00-\\x1F\\x7F', digit: '0-9',
  graph: '!-~', lower: 'a-z', print: ' -~', punct: '!-/:-@[-`{-~', space: '\\t\\n\\v\\f\\r ', upper: 'A-Z', word: '0-9A-Za-z_', xdigit: '0-9A-Fa-f',
}

/** Why RE2 would refuse `pattern`, or undefined when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  if (/\(\?<?[=!]/.test(pattern)) return 'lookahead and lookbehind are not supported by RE2'
  if (/(^|[^\\])(\\\\)*\\[1-9]/.test(pattern)) return 'backreferences are not supported by RE2'
  if (/\(\?P=/.test(pattern)) return 'named backreferences are not supported by RE2'
  const translated = pattern
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsU]+\)/g, '')
    .replace(/\(\?[imsU]*-?[imsU]*:/g, '(?:')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$')
    .replace(/\[:(\^?)([a-z]+):\]/g, (whole, negate: string, name: string) => {
      const cls = POSIX_CLASSES[name]
      return cls === undefined ? whole : negate ? '' : cls
    })
  try {
    new RegExp(translated, /\\[pP]/.test(translated) ? 'u' : '')
    return undefined
  } catch (error) {
    return (error as Error).message.replace(/^Invalid regular expression: /, '')
  }
}

/**
 * What apptainer reads from a root file system built from an OCI image, written into
 * each flat root so that `apptainer exec|run <repository>/<name>` gets the image's
 * environment and run command, as from a root DUCC made:
 *
 * - `.singularity.d/env/*.sh`, sourced in name order by apptainer's own shell before
 *   every action. `10-docker2singularity.sh` holds the image's Env (apptainer adds its
 *   default PATH directories after a file of that name); apptainer reads the values of
 *   `--env` and `APPTAINERENV_*` right after `99-base.sh`, so without that file they
 *   would be lost, and with it they win over the image's Env.
 * - `.singularity.d/runscript`, what `apptainer run` starts: Entrypoint and Cmd, as
 *   `docker run` starts them.
 * - `.singularity.d/labels.json` (the image's labels, for `apptainer inspect`) and
 *   `.singularity.d/libs/` (where `--nv` binds the host's GPU libraries).
 *
 * Each is written only where the image has nothing at that path (the image's own files,
 * and those of a root DUCC made, win). Only Node built-ins: the hook reads env scripts
 * with {@link parseEnvScript}.
 */
import type {ContainerConfig} from '../oci/documents.js'
import {addItems, addMountPoints, type RootItem} from './mount-points.js'

export const SINGULARITY_DIR = '.singularity.d'
/** The env script DUCC and apptainer write an image's Env to (and the name apptainer treats specially). */
export const ENV_SCRIPT = `${SINGULARITY_DIR}/env/10-docker2singularity.sh`

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * `value` as one shell word that every POSIX shell reads back byte for byte: single
 * quotes, a quote inside as `'"'"'`. (Not as `'\''`: apptainer 1.4.5's own shell reads an
 * unquoted `\'` as both characters, so `'it'\''s'` became `it\'s` there.)
 */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`
}

/**
 * The Env entries a shell can hold, each name once (its last value): `NAME=value` with
 * NAME a shell name and no NUL byte. Others are left out: `a.b=1` would stop a shell
 * sourcing the script there, an entry without `=` has no value.
 */
function usableEnv(env: readonly string[] | null | undefined): Map<string, string> {
  const vars = new Map<string, string>()
  for (const entry of env ?? []) {
    const eq = entry.indexOf('=')
    if (eq < 0) continue
    const name = entry.slice(0, eq)
    const value = entry.slice(eq + 1)
    if (NAME.test(name) && !value.includes('\0')) vars.set(name, value)
  }
  return vars
}

/**
 * The image's Env as a script for `.singularity.d/env/`: each value exact, whatever its
 * bytes. A variable already set and not empty keeps its value (so the user's HOME
 * stays), as in apptainer's own conversions; PATH is always the image's.
 */
export function envScript(env: readonly string[] | null | undefined): string {
  const lines = [
    '#!/bin/sh',
    "# The image's Env, written by cvmfs-oci. A variable already set and not empty keeps its",
    '# value, except PATH; apptainer reads --env and APPTAINERENV_* after 99-base.sh, so they win.',
  ]
  for (const [name, value] of usableEnv(env)) {
    lines.push(name === 'PATH' ? `${name}=${shellQuote(value)}` : `test -n "\${${name}:-}" || ${name}=${shellQuote(value)}`, `export ${name}`)
  }
  return `${lines.join('\n')}\n`
}

/** `99-base.sh`: its presence is what makes apptainer apply `--env` (see the module comment). */
export const BASE_SCRIPT = `#!/bin/sh
# Written by cvmfs-oci: apptainer reads the values of --env and APPTAINERENV_* right after
# this file. Host libraries that --nv and --rocm bind are in /.singularity.d/libs.
case ":\${LD_LIBRARY_PATH:-}:" in
*:/.singularity.d/libs:*) ;;
*) LD_LIBRARY_PATH="\${LD_LIBRARY_PATH:+\$LD_LIBRARY_PATH:}/.singularity.d/libs" ;;
esac
export LD_LIBRARY_PATH
`

/**
 * The runscript: `apptainer run IMAGE [ARGS…]` runs Entrypoint + Cmd, or Entrypoint +
 * ARGS, each word exactly as given (as `docker run` does; with or without apptainer's
 * `--no-eval`); with neither Entrypoint, Cmd nor ARGS a shell, as apptainer starts for a
 * root without a runscript.
 */
export function runscript(entrypoint: readonly string[] | null | undefined, cmd: readonly string[] | null | undefined): string {
  const words = (list: readonly string[]) => list.map(shellQuote).join(' ')
  const lines = [
    '#!/bin/sh',
    "# Written by cvmfs-oci from the image's Entrypoint and Cmd: ARGS replace Cmd and follow",
    '# Entrypoint, each passed exactly as given, as `docker run IMAGE ARGS...` does.',
  ]
  if (cmd && cmd.length > 0) lines.push('if [ "$#" -eq 0 ]; then', `    set -- ${words(cmd)}`, 'fi')
  if (entrypoint && entrypoint.length > 0) lines.push(`set -- ${words(entrypoint)} "$@"`)
  else if (!cmd || cmd.length === 0) lines.push('if [ "$#" -eq 0 ]; then', '    set -- /bin/sh', 'fi')
  lines.push(
    '# apptainer runs a runscript with its own shell when it holds the next line, so images',
    '# without /bin/sh run too; here it leaves "$@" as it is.',
    `SINGULARITY_OCI_RUN='-- "$@"'`,
    'eval "set ${SINGULARITY_OCI_RUN}"',
    'exec "$@"',
  )
  return `${lines.join('\n')}\n`
}

/** What {@link addSingularityFiles} writes for an image config, in order (parents first). */
export function singularityItems(config: ContainerConfig | null | undefined): RootItem[] {
  const dir = SINGULARITY_DIR
  return [
    {path: dir, kind: 'dir', mode: 0o755},
    {path: `${dir}/env`, kind: 'dir', mode: 0o755},
    {path: ENV_SCRIPT, kind: 'file', content: envScript(config?.Env)},
    {path: `${dir}/env/99-base.sh`, kind: 'file', content: BASE_SCRIPT},
    {path: `${dir}/libs`, kind: 'dir', mode: 0o755},
    {path: `${dir}/runscript`, kind: 'file', content: runscript(config?.Entrypoint, config?.Cmd), mode: 0o755},
    {path: `${dir}/labels.json`, kind: 'file', content: `${JSON.stringify(config?.Labels ?? {}, null, 2)}\n`},
  ]
}

/** Add apptainer's files to a flat root where the image has none; returns the paths added (relative). */
export async function addSingularityFiles(root: string, config: ContainerConfig | null | undefined): Promise<string[]> {
  return addItems(root, singularityItems(config))
}

/** Everything publish adds to a flat root beyond the image's files: mount points, then apptainer's files. */
export async function addRuntimeFiles(root: string, config: ContainerConfig | null | undefined): Promise<string[]> {
  return [...(await addMountPoints(root)), ...(await addSingularityFiles(root, config))]
}

// ---------------------------------------------------------------------------------------
// Reading env scripts back (the hook, for roots whose image config is not in the repository)

/** Go's escapes in a `%q` string, as DUCC and apptainer write Env values. */
const GO_ESCAPES: Record<string, number> = {a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39}

/**
 * The body of a Go `%q` string starting at `text[start]` (after its opening quote):
 * its bytes and the index after the closing quote, or undefined when it does not close.
 */
function readGoQuoted(text: string, start: number): {bytes: Buffer; end: number} | undefined {
  const out: number[] = []
  let i = start
  while (i < text.length) {
    const c = text[i]!
    if (c === '"') return {bytes: Buffer.from(out), end: i + 1}
    if (c !== '\\') {
      const cp = text.codePointAt(i)!
      out.push(...Buffer.from(String.fromCodePoint(cp)))
      i += cp > 0xffff ? 2 : 1
      continue
    }
    const e = text[i + 1]
    if (e === undefined) return undefined
    if (e in GO_ESCAPES) {
      out.push(GO_ESCAPES[e]!)
      i += 2
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8
      const hex = text.slice(i + 2, i + 2 + len)
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) return undefined
      const n = Number.parseInt(hex, 16)
      if (n > 0x10ffff) return undefined
      if (e === 'x') out.push(n)
      else out.push(...Buffer.from(String.fromCodePoint(n)))
      i += 2 + len
    } else if (/[0-7]/.test(e)) {
      const oct = text.slice(i + 1, i + 4)
      if (!/^[0-7]{3}$/.test(oct)) return undefined
      out.push(Number.parseInt(oct, 8) & 0xff)
      i += 4
    } else {
      return undefined
    }
  }
  return undefined
}

/** A single-quoted word starting at `text[start]` (after its quote), a quote inside written `'"'"'` or `'\''`. */
function readSingleQuoted(text: string, start: number): {value: string; end: number} | undefined {
  let value = ''
  let i = start
  for (;;) {
    const close = text.indexOf("'", i)
    if (close < 0) return undefined
    value += text.slice(i, close)
    const inner = [`"'"'`, `\\''`].find((form) => text.startsWith(form, close + 1))
    if (inner === undefined) return {value, end: close + 1}
    value += "'"
    i = close + 1 + inner.length
  }
}

const OURS = /test -n "\$\{([A-Za-z_][A-Za-z0-9_]*):-\}" \|\| \1='/y
const ASSIGN = /(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/y
const DEFAULTED = /export\s+([A-Za-z_][A-Za-z0-9_]*)="\$\{\1:-/y

/**
 * The Env an env script sets, as a shell sourcing it in an empty environment would
 * (a defaulted assignment only where the variable is unset or empty): the scripts
 * {@link envScript} writes, exactly, and those DUCC and apptainer write (`export
 * NAME="${NAME:-"…"}"`, the value in Go's `%q` with `\`, `"`, `` ` `` and `$` escaped
 * by a backslash), and plain `export NAME="…"` / `NAME='…'` lines.
 */
export function parseEnvScript(text: string): string[] {
  const vars = new Map<string, string>()
  const set = (name: string, value: string, onlyIfEmpty: boolean) => {
    if (!onlyIfEmpty || !vars.get(name)) vars.set(name, value)
  }
  let i = 0
  const match = (re: RegExp) => {
    re.lastIndex = i
    return re.exec(text) ?? undefined
  }
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === '\t') i++
    const ours = match(OURS)
    const defaulted = ours ? undefined : match(DEFAULTED)
    const assign = ours || defaulted ? undefined : match(ASSIGN)
    let end: number | undefined
    if (ours) {
      const word = readSingleQuoted(text, i + ours[0].length)
      if (word) set(ours[1]!, word.value, true)
      end = word?.end
    } else if (defaulted) {
      const at = i + defaulted[0].length
      // `"${NAME:-}"` (an entry without a value: the host's, if any) sets nothing here.
      if (text[at] === '"') {
        const body = readGoQuoted(text, at + 1)
        if (body && text.startsWith('}"', body.end)) {
          set(defaulted[1]!, unescapeShell(body.bytes.toString('utf8')), true)
          end = body.end + 2
        }
      }
    } else if (assign) {
      const at = i + assign[0].length
      const quote = text[at]
      if (quote === "'") {
        const word = readSingleQuoted(text, at + 1)
        if (word) set(assign[1]!, word.value, false)
        end = word?.end
      } else if (quote === '"') {
        const body = readGoQuoted(text, at + 1)
        if (body) set(assign[1]!, unescapeShell(body.bytes.toString('utf8')), false)
        end = body?.end
      } else {
        const eol = text.indexOf('\n', at)
        set(assign[1]!, text.slice(at, eol < 0 ? text.length : eol).trim(), false)
      }
    }
    // On to the next line (comments, `export NAME`, anything else are skipped).
    const eol = text.indexOf('\n', end ?? i)
    i = eol < 0 ? text.length : eol + 1
  }
  return [...vars].map(([name, value]) => `${name}=${value}`)
}

/** Undo a backslash before `\`, `"`, `` ` `` and `$` (apptainer's escaping inside double quotes). */
function unescapeShell(value: string): string {
  return value.replace(/\\([\\"`$])/g, '$1')
}

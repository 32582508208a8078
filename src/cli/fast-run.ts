/**
 * A command run without oclif: the command's definition parsed and run in one bundled
 * file (scripts/bundle-hot-paths.mjs bundles this with each definition), which starts
 * several times faster than loading oclif, its configuration and the command's graph
 * of ES modules.
 *
 * It does exactly what oclif would, or nothing: parseArgv() takes only what it reads the
 * way oclif's parser reads it, and declines everything else (a flag it does not know,
 * `--help`, `--`, a value that starts with "-", a missing argument, a bad value of any
 * kind …), so that oclif parses, and reports, that command line itself. Output and exit
 * codes are oclif's: lines as oclif's ux writes them through console.log/console.error, the
 * result as JSON with --json, and every error, once the command has started, handed to
 * the oclif command class of the same definition (loading oclif then) to print and exit.
 * test/unit/fast-run.test.ts compares this parser with oclif's and the two paths' output.
 */
import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {format} from 'node:util'

import {os} from '../builtins.js'
import {fdOutput} from '../output.js'
import {BASE_FLAGS, JSON_FLAG, type CommandDefinition, type CommandIO, type FlagSpec} from './spec.js'

/** The package root (where package.json is), which oclif's Config loads from. */
const packageRoot = (): string => join(dirname(fileURLToPath(import.meta.url)), '..', '..')

interface ParsedArgv {
  flags: Record<string, unknown>
  args: Record<string, string>
  argv: string[]
}

/** Every flag of a command, as oclif aggregates them: --json (if enabled), the global ones, its own. */
export function allFlags(definition: CommandDefinition<any, any>): Record<string, FlagSpec> {
  return {...(definition.enableJsonFlag ? {json: JSON_FLAG} : {}), ...BASE_FLAGS, ...definition.flags}
}

/** A flag's value as oclif parses it, or undefined where oclif would fail (or might). */
function optionValue(spec: FlagSpec, input: string): string | number | undefined {
  if (input === '' || input.startsWith('-')) return undefined
  if (spec.type === 'string') return spec.options && !spec.options.includes(input) ? undefined : input
  if (spec.type === 'integer') {
    if (!/^\d+$/.test(input)) return undefined
    const value = Number.parseInt(input, 10)
    return spec.min !== undefined && value < spec.min ? undefined : value
  }
  return undefined
}

/**
 * `argv` (the words after the command's name) parsed as oclif parses them for this
 * definition, or undefined when oclif should: anything this parser does not read exactly
 * as oclif does, every error, and whatever oclif would read from stdin (a missing
 * argument while stdin is not a terminal).
 */
export function parseArgv(definition: CommandDefinition<any, any>, argv: readonly string[], stdinIsTTY = stdinIsTerminal): ParsedArgv | undefined {
  const specs = allFlags(definition)
  const byChar = new Map(Object.entries(specs).flatMap(([name, spec]) => (spec.char ? [[spec.char, name] as const] : [])))
  const flags: Record<string, unknown> = {}
  const given = new Set<string>()
  const positionals: string[] = []
  // oclif gives the words after a multiple flag's value to that flag, until the next flag.
  let lastOption: FlagSpec | undefined
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (!word.startsWith('-')) {
      if (lastOption?.type === 'string' && lastOption.multiple) return undefined
      positionals.push(word)
      continue
    }
    let name: string | undefined
    let inline: string | undefined
    if (word.startsWith('--')) {
      const eq = word.indexOf('=')
      name = word.slice(2, eq === -1 ? undefined : eq)
      inline = eq === -1 ? undefined : word.slice(eq + 1)
      if (!Object.hasOwn(specs, name) && name.startsWith('no-') && inline === undefined) {
        const negated = Object.hasOwn(specs, name.slice(3)) ? specs[name.slice(3)] : undefined
        if (negated?.type === 'boolean' && negated.allowNo) {
          flags[name.slice(3)] = false
          continue
        }
      }
    } else if (word.length === 2) {
      name = byChar.get(word[1]!)
    }
    const spec = name !== undefined && Object.hasOwn(specs, name) ? specs[name] : undefined
    if (name === undefined || spec === undefined) return undefined
    if (spec.type === 'boolean') {
      if (inline !== undefined) return undefined
      flags[name] = true
      continue
    }
    const multiple = spec.type === 'string' && spec.multiple
    if (given.has(name) && !multiple) return undefined
    given.add(name)
    const input = inline ?? argv[++i]
    const value = input === undefined ? undefined : optionValue(spec, input)
    if (value === undefined) return undefined
    flags[name] = multiple ? [...((flags[name] as unknown[] | undefined) ?? []), value] : value
    lastOption = spec
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.type === 'string' && flags[name] !== undefined && spec.exclusive?.some((other) => flags[other] !== undefined)) return undefined
  }
  for (const [name, spec] of Object.entries(specs)) {
    if (flags[name] === undefined && spec.type !== 'boolean' && spec.default !== undefined) flags[name] = spec.default
  }
  const argSpecs = Object.entries(definition.args ?? {}) as [string, {required?: boolean}][]
  if (definition.strict !== false && positionals.length > argSpecs.length) return undefined
  const args: Record<string, string> = {}
  for (const [index, [name, spec]] of argSpecs.entries()) {
    const value = positionals[index]
    if (value !== undefined) args[name] = value
    // oclif reads a missing argument from stdin when it is not a terminal.
    else if (spec.required || !stdinIsTTY()) return undefined
  }
  // oclif orders the arguments by where each first appears (a repeated one moves up).
  return {flags, args, argv: positionals.sort((a, b) => argv.indexOf(a) - argv.indexOf(b))}
}

/** Whether stdin is a terminal (node:tty, and the node:net it loads, only when asked). */
function stdinIsTerminal(): boolean {
  return (createRequire(import.meta.url)('node:tty') as typeof import('node:tty')).isatty(0)
}

/** What oclif looks at before it runs a command that this path does not do: then oclif runs it. */
function oclifWouldDiffer(): boolean {
  const env = process.env
  // Debug output of oclif's own; CVMFS_OCI_DEBUG also changes how oclif prints errors.
  if (env.DEBUG || env.CVMFS_OCI_DEBUG) return true
  try {
    process.cwd()
  } catch {
    return true // oclif warns that the current directory does not exist
  }
  // A user's theme colours oclif's JSON output.
  if (!env.CVMFS_OCI_DISABLE_THEME) {
    const configDir = env.CVMFS_OCI_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(env.HOME || os().homedir(), '.config'), 'cvmfs-oci')
    if (existsSync(join(configDir, 'theme.json'))) return true
  }
  return false
}

/** oclif's errors module (warnings, the errors this.error() throws), loaded when first needed. */
function oclifErrors(): typeof import('@oclif/core/errors') {
  return createRequire(import.meta.url)('@oclif/core/errors') as typeof import('@oclif/core/errors')
}

/**
 * Run `definition` (command `id`, e.g. "hook:validate") with `argv` without oclif;
 * returns the exit code, or undefined to let oclif run the command line instead.
 */
export async function runFast(id: string, definition: CommandDefinition<any, any>, argv: string[]): Promise<number | undefined> {
  if (oclifWouldDiffer()) return undefined
  const parsed = parseArgv(definition, argv)
  if (!parsed) return undefined

  // As oclif's Command does: the variable of oclif's autoupdater is not passed on (and a
  // closed pipe on stdout, | head, is not an error: src/output.ts).
  delete process.env.CVMFS_OCI_REDIRECTED
  const json = Boolean(definition.enableJsonFlag) && (process.env.CVMFS_OCI_CONTENT_TYPE?.toLowerCase() === 'json' || argv.includes('--json'))
  // Lines as console.log/console.error write them, without Node.js's streams.
  const [stdout, stderr] = [fdOutput(1), fdOutput(2)]
  const io: CommandIO = {
    log: (message) => void (json || stdout.write(`${format(message)}\n`)),
    logToStderr: (message) => void (json || stderr.write(`${format(message)}\n`)),
    warn: (message) => void (json || oclifErrors().warn(message)),
    error: (message, options) => oclifErrors().error(message, options),
    jsonEnabled: () => json,
  }
  let result: unknown
  try {
    result = await definition.run(parsed as never, io)
  } catch (error) {
    await oclifCatch(id, definition, argv, error as Error)
    return process.exitCode === undefined ? undefined : Number(process.exitCode)
  }
  // oclif's logJson: pretty JSON through ux.stdout (colourless without a theme).
  if (result && json) stdout.write(`${format(JSON.stringify(result, undefined, 2))}\n`)
  return Number(process.exitCode ?? 0)
}

/**
 * An error from a command's run, reported as oclif reports it: oclif loaded, the
 * command's oclif class given the error, as its run would have, and what that throws
 * handed to oclif's handler, which prints it and exits with its code.
 */
async function oclifCatch(id: string, definition: CommandDefinition<any, any>, argv: string[], error: Error): Promise<void> {
  const [{Config}, {handle}, {oclifCommand}] = await Promise.all([import('@oclif/core'), import('@oclif/core/handle'), import('./base-command.js')])
  const config = await Config.load(packageRoot())
  const Command = oclifCommand(definition)
  Command.id = id
  const command = new (Command as unknown as new (argv: string[], config: unknown) => {catch(error: Error): Promise<unknown>})(argv, config)
  try {
    await command.catch(error)
  } catch (thrown) {
    await handle(thrown as Error)
  }
}

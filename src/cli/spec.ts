/**
 * A command as data, without oclif: its help text, flags and arguments, and what it does
 * with them once parsed. Each command is defined once, in src/cli/definitions/. oclif
 * builds its command classes from the definitions (src/cli/oclif-command.ts: `--help`,
 * the manifest, the man page and completion, and every invocation the fast path leaves
 * to it); the fast path (src/cli/fast-run.ts) parses and runs the same definitions in
 * one bundled file, without loading oclif. Nothing here may import @oclif/core.
 */
import {Logger} from '../log.js'

interface FlagCommon {
  description: string
  char?: string
  helpGroup?: string
}

export interface BooleanFlag extends FlagCommon {
  type: 'boolean'
  /** Also accept --no-NAME (false). */
  allowNo?: boolean
}

export interface StringFlag extends FlagCommon {
  type: 'string'
  multiple?: boolean
  options?: readonly string[]
  default?: string
  /** Flags that may not be given with this one. */
  exclusive?: readonly string[]
  helpValue?: string
}

export interface IntegerFlag extends FlagCommon {
  type: 'integer'
  default?: number
  min?: number
}

export type FlagSpec = BooleanFlag | StringFlag | IntegerFlag

export interface ArgSpec {
  description: string
  required?: boolean
}

/** The flag constructors, spelt as oclif's Flags.boolean/string/integer. */
export const flag = {
  boolean: <const O extends Omit<BooleanFlag, 'type'>>(options: O): O & {type: 'boolean'} => ({...options, type: 'boolean'}),
  string: <const O extends Omit<StringFlag, 'type'>>(options: O): O & {type: 'string'} => ({...options, type: 'string'}),
  integer: <const O extends Omit<IntegerFlag, 'type'>>(options: O): O & {type: 'integer'} => ({...options, type: 'integer'}),
}

export const arg = <const O extends ArgSpec>(options: O): O => options

/** Every command's flags (helpGroup GLOBAL), before its own. */
export const BASE_FLAGS = {
  debug: flag.boolean({description: 'Log every external command and more detail to stderr.', helpGroup: 'GLOBAL'}),
  quiet: flag.boolean({char: 'q', description: 'Only log warnings and errors.', helpGroup: 'GLOBAL'}),
  timestamps: flag.boolean({description: 'Prefix log lines with an ISO timestamp (for unattended runs).', helpGroup: 'GLOBAL'}),
}

/** `--json`, which oclif adds (first) to commands with enableJsonFlag. */
export const JSON_FLAG = flag.boolean({description: 'Format output as json.', helpGroup: 'GLOBAL'})

type FlagValue<F> = F extends {type: 'boolean'} ? boolean : F extends {type: 'integer'} ? number : string

/** Parsed flag values: a list for multiple flags, always set with a default, else optional. */
export type FlagValues<S> = {
  [K in keyof S]: S[K] extends {multiple: true} ? FlagValue<S[K]>[] | undefined : S[K] extends {default: string | number} ? FlagValue<S[K]> : FlagValue<S[K]> | undefined
}

export type ArgValues<S> = {[K in keyof S]: S[K] extends {required: true} ? string : string | undefined}

export interface Parsed<F, A> {
  flags: FlagValues<F & typeof BASE_FLAGS> & {json?: boolean}
  args: ArgValues<A>
  /** Every argument, in order (what non-strict commands take several of). */
  argv: string[]
}

/** What a command may do besides returning its result (printed as JSON with --json). */
export interface CommandIO {
  /** A line on stdout, unless --json. */
  log(message: string): void
  /** A line on stderr, unless --json. */
  logToStderr(message: string): void
  /** oclif's warning on stderr, unless --json. */
  warn(message: string): void
  /** Fail with oclif's error output and this exit code. */
  error(message: string, options: {exit: number; code?: string}): never
  jsonEnabled(): boolean
}

export interface CommandDefinition<F extends Record<string, FlagSpec> = Record<string, FlagSpec>, A extends Record<string, ArgSpec> = Record<string, ArgSpec>> {
  summary: string
  description?: string
  examples?: string[]
  /** false: any number of arguments (argv); the default true allows only those in args. */
  strict?: boolean
  enableJsonFlag?: boolean
  args?: A
  flags?: F
  run(parsed: Parsed<F, A>, io: CommandIO): Promise<unknown>
}

/** A command definition, with its flags' and arguments' types carried to run(). */
export function defineCommand<const F extends Record<string, FlagSpec> = {}, const A extends Record<string, ArgSpec> = {}>(definition: CommandDefinition<F, A>): CommandDefinition<F, A> {
  return definition
}

/** The logger the global flags ask for. --json output is for programs: no live progress lines then, even on a terminal. */
export function loggerFor(flags: {debug?: boolean; quiet?: boolean; timestamps?: boolean; json?: boolean}): Logger {
  return new Logger({level: flags.debug ? 'debug' : flags.quiet ? 'warn' : 'info', timestamps: flags.timestamps, live: flags.json ? false : undefined})
}

/**
 * The oclif side of every command: the class oclif loads for a definition of
 * src/cli/definitions/ (its help, flags and arguments as oclif's Flags and Args), and
 * what all commands share: turning our error family into oclif errors with the
 * documented exit code (never oclif's default 2, which means "usage").
 */
import {Args, Command, Flags, type Interfaces} from '@oclif/core'

import {CvmfsOciError, toCvmfsOciError} from '../errors.js'
import {BASE_FLAGS, type ArgSpec, type CommandDefinition, type CommandIO, type FlagSpec} from './spec.js'

/** The same flags as oclif's: only the options a spec sets, so help and manifest match. */
function toOclifFlag(spec: FlagSpec): Interfaces.Flag<unknown> {
  const {type, ...options} = spec
  const set = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
  if (set.options) set.options = [...(set.options as string[])]
  if (set.exclusive) set.exclusive = [...(set.exclusive as string[])]
  switch (type) {
    case 'boolean':
      return Flags.boolean(set) as Interfaces.Flag<unknown>
    case 'integer':
      return Flags.integer(set) as Interfaces.Flag<unknown>
    case 'string':
      return Flags.string(set) as Interfaces.Flag<unknown>
  }
}

export function toOclifFlags(specs: Record<string, FlagSpec>): Interfaces.FlagInput {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, toOclifFlag(spec)]))
}

function toOclifArgs(specs: Record<string, ArgSpec>): Interfaces.ArgInput {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, Args.string({...spec})]))
}

export abstract class BaseCommand extends Command {
  static baseFlags = toOclifFlags(BASE_FLAGS)

  protected override async catch(error: Error & {exitCode?: number; oclif?: unknown}): Promise<unknown> {
    // oclif's own errors (parse errors, exit) keep their behaviour.
    if (!(error instanceof CvmfsOciError) && (error.oclif !== undefined || error.constructor?.name?.endsWith('ExitError'))) {
      return super.catch(error)
    }
    const ours = toCvmfsOciError(error)
    if (this.jsonEnabled()) {
      this.logJson({error: ours.toJSON()})
      this.exit(ours.exitCode)
    }
    return this.error(ours.display(), {exit: ours.exitCode, code: ours.code})
  }

  /** The command's output channels, as a definition's run() uses them. */
  protected get io(): CommandIO {
    return {
      log: (message) => this.log(message),
      logToStderr: (message) => this.logToStderr(message),
      warn: (message) => void this.warn(message),
      error: (message, options) => this.error(message, options),
      jsonEnabled: () => this.jsonEnabled(),
    }
  }
}

/** The oclif command class of a definition. */
export function oclifCommand(definition: CommandDefinition<any, any>): typeof BaseCommand {
  class DefinedCommand extends BaseCommand {
    static override summary = definition.summary
    static override description = definition.description
    static override examples = definition.examples as string[]
    static override strict = definition.strict ?? true
    static override enableJsonFlag = definition.enableJsonFlag ?? false
    static override args = toOclifArgs(definition.args ?? {})
    static override flags = toOclifFlags(definition.flags ?? {})

    async run(): Promise<unknown> {
      const parsed = await this.parse(DefinedCommand)
      return definition.run(parsed as never, this.io)
    }
  }
  return DefinedCommand
}

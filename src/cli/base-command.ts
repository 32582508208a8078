/**
 * What every oclif command shares: turning our error family into oclif errors
 * with the documented exit code (never oclif's default 2, which means "usage"),
 * and the logger for the run.
 */
import {Command, Flags} from '@oclif/core'

import {CvmfsOciError, toCvmfsOciError} from '../errors.js'
import {Logger} from '../log.js'

export abstract class BaseCommand extends Command {
  static baseFlags = {
    debug: Flags.boolean({description: 'Log every external command and more detail to stderr.', helpGroup: 'GLOBAL'}),
    quiet: Flags.boolean({char: 'q', description: 'Only log warnings and errors.', helpGroup: 'GLOBAL'}),
    timestamps: Flags.boolean({description: 'Prefix log lines with an ISO timestamp (for unattended runs).', helpGroup: 'GLOBAL'}),
  }

  protected makeLogger(flags: {debug?: boolean; quiet?: boolean; timestamps?: boolean}): Logger {
    // --json output is for programs: no live progress lines then, even on a terminal.
    return new Logger({level: flags.debug ? 'debug' : flags.quiet ? 'warn' : 'info', timestamps: flags.timestamps, live: this.jsonEnabled() ? false : undefined})
  }

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
}

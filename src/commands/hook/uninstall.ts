import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {DEFAULT_HOOKS_DIR, uninstallHook} from '../../hook/install.js'

export default class HookUninstall extends BaseCommand {
  static summary = 'Remove the OCI hook file.'
  static enableJsonFlag = true
  static flags = {
    'hooks-dir': Flags.string({description: `Hooks directory (default ${DEFAULT_HOOKS_DIR}).`}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(HookUninstall)
    const result = await uninstallHook({hooksDir: flags['hooks-dir']})
    this.logToStderr(result.removed ? `removed ${result.file}` : `${result.file} was not installed`)
    return result
  }
}

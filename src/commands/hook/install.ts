import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {DEFAULT_HOOKS_DIR, installHook} from '../../hook/install.js'

export default class HookInstall extends BaseCommand {
  static summary = 'Install the OCI hook that gives --rootfs containers their image Env, WorkingDir and User.'
  static description = `Writes ${DEFAULT_HOOKS_DIR}/cvmfs-oci.json (or into --hooks-dir), a precreate hook that runs for every container and changes only those whose root is a published flat root. The file is checked before it is written and replaced atomically.`
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> hook install', '<%= config.bin %> hook install --hooks-dir /etc/containers/oci/hooks.d']
  static flags = {
    'hooks-dir': Flags.string({description: `Hooks directory (default ${DEFAULT_HOOKS_DIR}).`}),
    node: Flags.string({description: 'Absolute path of node for the hook (default: the node running this command).'}),
    program: Flags.string({description: "Absolute path of the hook program (default: this installation's bin/hook.js)."}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(HookInstall)
    const result = await installHook({hooksDir: flags['hooks-dir'], node: flags.node, program: flags.program})
    for (const problem of result.problems) this.warn(problem.message)
    this.logToStderr(`installed ${result.file}`)
    return result
  }
}

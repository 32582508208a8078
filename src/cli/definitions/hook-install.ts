import {DEFAULT_HOOKS_DIR, installHook} from '../../hook/install.js'
import {defineCommand, flag} from '../spec.js'

export default defineCommand({
  summary: 'Install the OCI hook that gives --rootfs containers their image Env, WorkingDir and User.',
  description: `Writes ${DEFAULT_HOOKS_DIR}/cvmfs-oci.json (or into --hooks-dir), a precreate hook that runs for every container and changes only those whose root is a published flat root. The file is checked before it is written and replaced atomically.`,
  enableJsonFlag: true,
  examples: ['<%= config.bin %> hook install', '<%= config.bin %> hook install --hooks-dir /etc/containers/oci/hooks.d'],
  flags: {
    'hooks-dir': flag.string({description: `Hooks directory (default ${DEFAULT_HOOKS_DIR}).`}),
    node: flag.string({description: 'Absolute path of node for the hook (default: the node running this command).'}),
    program: flag.string({description: "Absolute path of the hook program (default: this installation's bin/hook.js)."}),
  },
  async run({flags}, io) {
    const result = await installHook({hooksDir: flags['hooks-dir'], node: flags.node, program: flags.program})
    for (const problem of result.problems) io.warn(problem.message)
    io.logToStderr(`installed ${result.file}`)
    return result
  },
})

import {DEFAULT_HOOKS_DIR, uninstallHook} from '../../hook/install.js'
import {defineCommand, flag} from '../spec.js'

export default defineCommand({
  summary: 'Remove the OCI hook file.',
  enableJsonFlag: true,
  flags: {
    'hooks-dir': flag.string({description: `Hooks directory (default ${DEFAULT_HOOKS_DIR}).`}),
  },
  async run({flags}, io) {
    const result = await uninstallHook({hooksDir: flags['hooks-dir']})
    io.logToStderr(result.removed ? `removed ${result.file}` : `${result.file} was not installed`)
    return result
  },
})

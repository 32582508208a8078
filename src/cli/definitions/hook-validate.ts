import {existsSync} from 'node:fs'

import {ExitCode} from '../../errors.js'
import {callSynchronouslyWhileFast} from '../../fs-calls.js'
import {checkHookFiles, DEFAULT_HOOKS_DIRS} from '../../hook/hook-file.js'
import {arg, defineCommand} from '../spec.js'

export default defineCommand({
  summary: 'Check OCI hook files the way podman reads them.',
  description: `Checks every *.json in ${DEFAULT_HOOKS_DIRS.join(' and ')} (or the files and directories given) as podman 4 loads them, and names each problem with what podman does about it: "error" where podman refuses to start containers (bad JSON, a field of the wrong type, an unknown stage, a regex Go's RE2 refuses, a hook program that cannot run — one such file stops every container start on the node, or every one its hook matches), "warning" where podman starts them but skips that hook (hook.path missing or relative, a "when" that never matches, no stage) or runs it with part of the file ignored. Exit code 4 when any file has an error.`,
  strict: false,
  enableJsonFlag: true,
  examples: ['<%= config.bin %> hook validate', '<%= config.bin %> hook validate /etc/containers/oci/hooks.d my-hook.json'],
  args: {path: arg({description: "hook files or directories (default: podman's hooks directories)"})},
  async run({argv}, io) {
    callSynchronouslyWhileFast()
    // podman skips hooks directories that do not exist; so do we, unless they were named.
    const paths = argv.length ? argv : DEFAULT_HOOKS_DIRS.filter((dir) => existsSync(dir))
    const reports = await checkHookFiles(paths)
    let errors = 0
    for (const report of reports) {
      if (report.problems.length === 0) io.logToStderr(`${report.file}: ok`)
      for (const problem of report.problems) {
        if (problem.severity === 'error') errors++
        io.logToStderr(`${report.file}: ${problem.severity}: ${problem.message}`)
      }
    }
    if (errors > 0) {
      io.logToStderr(`${errors} error(s): podman refuses to start containers while these files are in a hooks directory`)
      process.exitCode = ExitCode.Verification
    }
    return {files: reports, errors}
  },
})

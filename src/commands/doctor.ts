import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {runDoctor} from '../doctor/doctor.js'
import {formatReport} from '../doctor/report.js'
import {ExitCode} from '../errors.js'

export default class Doctor extends BaseCommand {
  static summary = 'Check this node: Node.js, podman, the OCI hook, repositories, storage.conf, publishing tools.'
  static description = `Looks at what cvmfs-oci needs on a worker node and says what to fix: the Node.js version; podman's version and whether it has precreate hooks and --rootfs DIR:O; the cvmfs-oci hook installed, its node and program running (and every other hook file valid: one bad file stops every container); the configuration file and each repository resolve searches mounted and readable; storage.conf listing the repositories' podman image stores; skopeo, setfattr and flock for publishers. Each finding is "ok", "warning" (works, but look) or "problem" (broken). Exit code ${ExitCode.Failure} when there is a problem.`
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json', '<%= config.bin %> doctor --hooks-dir /etc/containers/oci/hooks.d --root /cvmfs/unpacked.example.org']
  static flags = {
    'hooks-dir': Flags.string({description: "Hooks directory to check instead of podman's (repeatable; default: hooks_dir of containers.conf, else podman's defaults).", multiple: true}),
    root: Flags.string({description: 'Repository root to check first (repeatable; the configured roots are checked too, as resolve searches them).', multiple: true}),
    config: Flags.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Doctor)
    const report = await runDoctor({hooksDirs: flags['hooks-dir'], roots: flags.root, configPath: flags.config, logger: this.makeLogger(flags)})
    this.logToStderr(formatReport(report))
    if (!report.ok) process.exitCode = ExitCode.Failure
    return report
  }
}

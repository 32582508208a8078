import {runDoctor} from '../../doctor/doctor.js'
import {formatReport} from '../../doctor/report.js'
import {ExitCode} from '../../errors.js'
import {defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: 'Check this node: Node.js, podman, the OCI hook, repositories, storage.conf, publishing tools.',
  description: `Looks at what cvmfs-oci needs on a worker node and says what to fix: the Node.js version; podman's version and whether it has precreate hooks and --rootfs DIR:O; the cvmfs-oci hook installed, its node and program running (and every other hook file valid: one bad file stops every container); the configuration file and each repository resolve searches mounted and readable; storage.conf listing the repositories' podman image stores; skopeo, setfattr and flock for publishers. Each finding is "ok", "warning" (works, but look) or "problem" (broken). Exit code ${ExitCode.Failure} when there is a problem.`,
  enableJsonFlag: true,
  examples: ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json', '<%= config.bin %> doctor --hooks-dir /etc/containers/oci/hooks.d --root /cvmfs/unpacked.example.org'],
  flags: {
    'hooks-dir': flag.string({description: "Hooks directory to check instead of podman's (repeatable; default: hooks_dir of containers.conf, else podman's defaults).", multiple: true}),
    root: flag.string({description: 'Repository root to check first (repeatable; the configured roots are checked too, as resolve searches them).', multiple: true}),
    config: flag.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  },
  async run({flags}, io) {
    const report = await runDoctor({hooksDirs: flags['hooks-dir'], roots: flags.root, configPath: flags.config, logger: loggerFor(flags)})
    io.logToStderr(formatReport(report))
    if (!report.ok) process.exitCode = ExitCode.Failure
    return report
  },
})

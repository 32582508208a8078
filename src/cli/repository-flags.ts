/**
 * The flags that choose the repository a command writes, shared by publish, sync, rm
 * and gc: `--root DIR` or `--repo NAME` (or the only repository in the configuration).
 */
import {flag} from './spec.js'

export const repositoryFlags = {
  root: flag.string({description: 'Repository directory to write (created if missing by publish).', exclusive: ['repo']}),
  repo: flag.string({
    description:
      'CVMFS repository to write, mounted at /cvmfs/NAME: every change is one cvmfs_server transaction (run it on the stratum-0 or a gateway publisher). Default: the only one under "repositories" in the configuration file.',
    exclusive: ['root'],
  }),
  ingest: flag.boolean({
    description: 'With --repo: send changes with cvmfs_server ingest (tar streams) instead of a transaction mount; extended attributes and deletions of tagged names still go through short transactions, which ingest cannot do (--no-ingest overrides the configuration).',
    allowNo: true,
  }),
  config: flag.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  'lock-timeout': flag.integer({description: 'Seconds to wait for another publisher holding the repository.', default: 600, min: 0}),
}

/** The parsed flags, as the core's target options. */
export function targetFlags(flags: {root?: string; repo?: string; ingest?: boolean; config?: string; 'lock-timeout': number}) {
  return {root: flags.root, repo: flags.repo, ingest: flags.ingest, configPath: flags.config, lockTimeoutMs: flags['lock-timeout'] * 1000}
}

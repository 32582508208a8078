import {callSynchronouslyWhileFast} from '../../fs-calls.js'
import {formatListing, listCommand} from '../../layout/list-command.js'
import {defineCommand, flag} from '../spec.js'

export default defineCommand({
  summary: 'List the images published in a repository.',
  description: 'One line per public name: reference, config digest (the image ID), size and date. Reads .metadata, so images published by DUCC are listed too.',
  enableJsonFlag: true,
  examples: ['<%= config.bin %> list --root /srv/repo', '<%= config.bin %> list --root /cvmfs/unpacked.cern.ch --json'],
  flags: {
    root: flag.string({description: 'Repository root (repeatable; default: the configured roots, as for resolve).', multiple: true}),
    repo: flag.string({description: 'CVMFS repository, mounted at /cvmfs/NAME (repeatable).', multiple: true}),
    config: flag.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  },
  async run({flags}, io) {
    callSynchronouslyWhileFast()
    const listing = await listCommand({roots: flags.root, repos: flags.repo, configPath: flags.config})
    if (!io.jsonEnabled()) io.log(formatListing(listing))
    return listing
  },
})

import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {listCommand, formatListing} from '../layout/list-command.js'

export default class List extends BaseCommand {
  static summary = 'List the images published in a repository.'
  static description = 'One line per public name: reference, config digest (the image ID), size and date. Reads .metadata, so images published by DUCC are listed too.'
  static enableJsonFlag = true
  static examples = ['<%= config.bin %> list --root /srv/repo', '<%= config.bin %> list --root /cvmfs/unpacked.cern.ch --json']
  static flags = {
    root: Flags.string({description: 'Repository root (repeatable; default: the configured roots, as for resolve).', multiple: true}),
    repo: Flags.string({description: 'CVMFS repository, mounted at /cvmfs/NAME (repeatable).', multiple: true}),
    config: Flags.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(List)
    const listing = await listCommand({roots: flags.root, repos: flags.repo, configPath: flags.config})
    if (!this.jsonEnabled()) this.log(formatListing(listing))
    return listing
  }
}

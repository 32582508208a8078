import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {configurePodman} from '../../podman-store/configure.js'

export default class PodmanConfigure extends BaseCommand {
  static summary = "Add a repository's podman store to storage.conf, so podman runs its images by name."
  static description = `Adds <repository>/podmanStore to [storage.options] additionalimagestores of containers-storage's storage.conf (default: $CONTAINERS_STORAGE_CONF, else /etc/containers/storage.conf for root and ~/.config/containers/storage.conf for other users). Every other line and comment of the file stays; running it again changes nothing. A missing /etc/containers/storage.conf starts from /usr/share/containers/storage.conf when the distribution ships one.

Then, on that machine: podman images lists what the repository offers, and podman run IMAGE runs it with its Entrypoint, Cmd, Env, WorkingDir and User, without pulling. For one command only, podman --storage-opt additionalimagestore=/cvmfs/<repo>/podmanStore does the same without any file.`
  static enableJsonFlag = true
  static examples = [
    '<%= config.bin %> podman configure --repo unpacked.cern.ch',
    '<%= config.bin %> podman configure --storage-conf ~/.config/containers/storage.conf --root /srv/repo',
    '<%= config.bin %> podman configure --repo my.repo.org --print',
  ]
  static flags = {
    'storage-conf': Flags.string({description: 'storage.conf to edit (created if missing).'}),
    repo: Flags.string({description: 'CVMFS repository NAME: adds /cvmfs/NAME/podmanStore (repeatable).', multiple: true}),
    root: Flags.string({description: 'Repository root directory: adds DIR/podmanStore (repeatable).', multiple: true}),
    print: Flags.boolean({description: 'Print the storage.conf lines instead of editing any file.'}),
    config: Flags.string({description: 'Configuration file, for the CVMFS mount point of --repo (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(PodmanConfigure)
    const result = await configurePodman({
      storageConf: flags['storage-conf'],
      roots: flags.root,
      repos: flags.repo,
      print: flags.print,
      configPath: flags.config,
      logger: this.makeLogger(flags),
    })
    if (result.snippet !== undefined && !this.jsonEnabled()) this.log(result.snippet.trimEnd())
    return result
  }
}

import {configurePodman} from '../../podman-store/configure.js'
import {defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: "Add a repository's podman store to storage.conf, so podman runs its images by name.",
  description: `Adds <repository>/podmanStore to [storage.options] additionalimagestores of containers-storage's storage.conf (default: $CONTAINERS_STORAGE_CONF, else /etc/containers/storage.conf for root and ~/.config/containers/storage.conf for other users). Every other line and comment of the file stays; running it again changes nothing. A missing /etc/containers/storage.conf starts from /usr/share/containers/storage.conf when the distribution ships one.

Then, on that machine: podman images lists what the repository offers, and podman run IMAGE runs it with its Entrypoint, Cmd, Env, WorkingDir and User, without pulling. For one command only, podman --storage-opt additionalimagestore=/cvmfs/<repo>/podmanStore does the same without any file.`,
  enableJsonFlag: true,
  examples: [
    '<%= config.bin %> podman configure --repo unpacked.cern.ch',
    '<%= config.bin %> podman configure --storage-conf ~/.config/containers/storage.conf --root /srv/repo',
    '<%= config.bin %> podman configure --repo my.repo.org --print',
  ],
  flags: {
    'storage-conf': flag.string({description: 'storage.conf to edit (created if missing).'}),
    repo: flag.string({description: 'CVMFS repository NAME: adds /cvmfs/NAME/podmanStore (repeatable).', multiple: true}),
    root: flag.string({description: 'Repository root directory: adds DIR/podmanStore (repeatable).', multiple: true}),
    print: flag.boolean({description: 'Print the storage.conf lines instead of editing any file.'}),
    config: flag.string({description: 'Configuration file, for the CVMFS mount point of --repo (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  },
  async run({flags}, io) {
    const result = await configurePodman({
      storageConf: flags['storage-conf'],
      roots: flags.root,
      repos: flags.repo,
      print: flags.print,
      configPath: flags.config,
      logger: loggerFor(flags),
    })
    if (result.snippet !== undefined && !io.jsonEnabled()) io.log(result.snippet.trimEnd())
    return result
  },
})

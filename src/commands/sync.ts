import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {registryFlags, registryOptions} from '../cli/registry-flags.js'
import {repositoryFlags, targetFlags} from '../cli/repository-flags.js'
import {syncCommand} from '../sync/sync-command.js'

export default class Sync extends BaseCommand {
  static summary = 'Publish every image of a wish list (DUCC\'s format) that is new or changed.'
  static description = `WISHLIST is a YAML file in DUCC's recipe format:

  version: 1
  cvmfs_repo: unpacked.example.org
  input:
    - https://registry.hub.docker.com/library/ubuntu:22.04
    - https://gitlab-registry.example.org/sci/app:2.*

A * or ? in a tag matches the registry's tags (skopeo list-tags); http:// means a registry without TLS; user and output_format are accepted and ignored. platform: all (cvmfs-oci's key; DUCC ignores it) publishes every platform of multi-platform images, as --platform all does; --platform overrides it. Images go to cvmfs_repo (or --repo, or --root). Each new or changed image is one cvmfs_server transaction, an unchanged one none; one failing does not stop the others, and the exit code is that of the first failure. One line per image; --timestamps for logs of unattended runs; --dry-run prints the plan and changes nothing.`
  static examples = [
    '<%= config.bin %> sync --timestamps /etc/cvmfs-oci/wishlist.yaml',
    '<%= config.bin %> sync --dry-run /etc/cvmfs-oci/wishlist.yaml',
    '<%= config.bin %> sync --root /srv/repo --json wishlist.yaml',
  ]
  static enableJsonFlag = true
  static args = {wishlist: Args.string({description: 'wish list (YAML)', required: true})}
  static flags = {
    ...repositoryFlags,
    'dry-run': Flags.boolean({description: 'Print what would be published, linked or left unchanged; fetch no layer, change nothing.'}),
    platform: Flags.string({
      description: "Platform to take from multi-platform images, OS/ARCH[/VARIANT] (default: the wish list's platform:, else this host); all, or several separated by commas, publishes each (see publish --help).",
    }),
    ...registryFlags,
    tmpdir: Flags.string({description: 'Directory for downloads (default: $TMPDIR or /tmp).'}),
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Sync)
    const {failure, ...summary} = await syncCommand({
      wishlist: args.wishlist,
      ...targetFlags(flags),
      dryRun: flags['dry-run'],
      platform: flags.platform,
      registry: registryOptions(flags),
      tmpDir: flags.tmpdir,
      logger: this.makeLogger(flags),
    })
    if (failure) {
      // Every failure was logged as it happened; the exit code is the first one's.
      if (!this.jsonEnabled()) this.error(`${summary.failed.length} image(s) failed: ${summary.failed.map((f) => f.input).join(', ')}`, {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return summary
  }
}

import {syncCommand} from '../../sync/sync-command.js'
import {registryFlags, registryOptions} from '../registry-flags.js'
import {repositoryFlags, targetFlags} from '../repository-flags.js'
import {arg, defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: "Publish every image of a wish list (DUCC's format) that is new or changed.",
  description: `WISHLIST is a YAML file in DUCC's recipe format:

  version: 1
  cvmfs_repo: unpacked.example.org
  input:
    - https://registry.hub.docker.com/library/ubuntu:22.04
    - https://gitlab-registry.example.org/sci/app:2.*

A * or ? in a tag matches the registry's tags (skopeo list-tags); http:// means a registry without TLS; user and output_format are accepted and ignored. platform: all (cvmfs-oci's key; DUCC ignores it) publishes every platform of multi-platform images, as --platform all does; --platform overrides it. Images go to cvmfs_repo (or --repo, or --root). Each new or changed image is one cvmfs_server transaction, an unchanged one none; one failing does not stop the others, and the exit code is that of the first failure. One line per image; --timestamps for logs of unattended runs; --dry-run prints the plan and changes nothing.`,
  examples: [
    '<%= config.bin %> sync --timestamps /etc/cvmfs-oci/wishlist.yaml',
    '<%= config.bin %> sync --dry-run /etc/cvmfs-oci/wishlist.yaml',
    '<%= config.bin %> sync --root /srv/repo --json wishlist.yaml',
  ],
  enableJsonFlag: true,
  args: {wishlist: arg({description: 'wish list (YAML)', required: true})},
  flags: {
    ...repositoryFlags,
    'dry-run': flag.boolean({description: 'Print what would be published, linked or left unchanged; fetch no layer, change nothing.'}),
    platform: flag.string({
      description: "Platform to take from multi-platform images, OS/ARCH[/VARIANT] (default: the wish list's platform:, else this host); all, or several separated by commas, publishes each (see publish --help).",
    }),
    ...registryFlags,
    tmpdir: flag.string({description: 'Directory for downloads (default: $TMPDIR or /tmp).'}),
  },
  async run({args, flags}, io) {
    const {failure, ...summary} = await syncCommand({
      wishlist: args.wishlist,
      ...targetFlags(flags),
      dryRun: flags['dry-run'],
      platform: flags.platform,
      registry: registryOptions(flags),
      tmpDir: flags.tmpdir,
      logger: loggerFor(flags),
    })
    if (failure) {
      // Every failure was logged as it happened; the exit code is the first one's.
      if (!io.jsonEnabled()) io.error(`${summary.failed.length} image(s) failed: ${summary.failed.map((f) => f.input).join(', ')}`, {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return summary
  },
})

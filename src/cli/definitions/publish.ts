import {publishCommand} from '../../publish/publish-command.js'
import {registryFlags, registryOptions} from '../registry-flags.js'
import {repositoryFlags, targetFlags} from '../repository-flags.js'
import {arg, defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: 'Publish container images into a repository as flat root filesystems.',
  description: `Fetches each IMAGE with skopeo (so registries.conf, auth.json, policy.json and certs.d apply as for podman), verifies it (schemas, digests, DiffIDs), merges its layers into <root>/.flat/<hh>/<config digest> and writes DUCC's layout: the public link <registry>/<repository>:<tag>, .metadata, .cvmfscatalog markers.

IMAGE is anything skopeo copies from: a registry reference (bare, or docker://), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME]. Images without a registry name need --name.

With --repo NAME the image is downloaded first, then written in one cvmfs_server transaction on /cvmfs/NAME and published (aborted on any error, SIGINT or SIGTERM); an unchanged image opens no transaction.

--platform all (or several, linux/amd64,linux/arm64) publishes those platforms of a multi-platform image in DUCC's multi-arch layout, in one change: each platform's root linked from .multiarch/<arch>/<name>, and the public name a CVMFS variant link to .multiarch/$(CVMFS_ARCH:-<this host's arch>)/<name>, so every node's CVMFS client (CVMFS_ARCH is its uname -m; alias links such as .multiarch/x86_64 -> amd64 lead on) finds its own platform at the same path. One platform (the default: this host's) gives a plain link.`,
  examples: [
    '<%= config.bin %> publish --root /srv/repo docker.io/library/alpine:3.20',
    '<%= config.bin %> publish --root /srv/repo --tls-verify=false 127.0.0.1:5000/tools/busybox:1',
    '<%= config.bin %> publish --root /srv/repo --name registry.example.org/sci/app:2 oci:/tmp/layout:2',
    '<%= config.bin %> publish --repo unpacked.example.org --timestamps docker.io/library/alpine:3.20',
    '<%= config.bin %> publish --repo unpacked.example.org --platform all docker.io/library/alpine:3.20',
  ],
  strict: false,
  enableJsonFlag: true,
  args: {image: arg({description: 'image(s) to publish', required: true})},
  flags: {
    ...repositoryFlags,
    platform: flag.string({
      description: 'Platform to take from a multi-platform image, OS/ARCH[/VARIANT] (default: this host); all, or several separated by commas, publishes each under .multiarch/ with a variant link.',
    }),
    name: flag.string({description: 'Name to publish the image under (REGISTRY/REPOSITORY:TAG); required for oci:, oci-archive: and dir: sources.'}),
    ...registryFlags,
    tmpdir: flag.string({description: 'Directory for downloads (default: $TMPDIR or /tmp).'}),
  },
  async run({argv, flags}, io) {
    const summary = await publishCommand({
      images: argv,
      ...targetFlags(flags),
      platform: flags.platform,
      name: flags.name,
      registry: registryOptions(flags),
      tmpDir: flags.tmpdir,
      logger: loggerFor(flags),
    })
    const {failure, ...result} = summary
    if (failure) {
      // With --json the summary (which names every failure) is the output; without, the error.
      if (!io.jsonEnabled()) io.error(failure.display(), {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return result
  },
})

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {publishCommand} from '../publish/publish-command.js'

export default class Publish extends BaseCommand {
  static summary = 'Publish container images into a repository as flat root filesystems.'
  static description = `Fetches each IMAGE with skopeo (so registries.conf, auth.json, policy.json and certs.d apply as for podman), verifies it (schemas, digests, DiffIDs), merges its layers into <root>/.flat/<hh>/<config digest> and writes DUCC's layout: the public link <registry>/<repository>:<tag>, .metadata, .cvmfscatalog markers.

IMAGE is anything skopeo copies from: a registry reference (bare, or docker://), oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME]. Images without a registry name need --name.`
  static examples = [
    '<%= config.bin %> publish --root /srv/repo docker.io/library/alpine:3.20',
    '<%= config.bin %> publish --root /srv/repo --tls-verify=false 127.0.0.1:5000/tools/busybox:1',
    '<%= config.bin %> publish --root /srv/repo --name registry.example.org/sci/app:2 oci:/tmp/layout:2',
  ]
  static strict = false
  static enableJsonFlag = true
  static args = {image: Args.string({description: 'image(s) to publish', required: true})}
  static flags = {
    root: Flags.string({description: 'Repository root directory to publish into (created if missing).', required: true}),
    platform: Flags.string({description: 'Platform to take from a multi-platform image, OS/ARCH[/VARIANT] (default: this host).'}),
    name: Flags.string({description: 'Name to publish the image under (REGISTRY/REPOSITORY:TAG); required for oci:, oci-archive: and dir: sources.'}),
    'tls-verify': Flags.string({description: 'Require HTTPS and verify certificates when talking to the registry (default true).', options: ['true', 'false']}),
    creds: Flags.string({description: 'Credentials USERNAME[:PASSWORD] for the registry.'}),
    authfile: Flags.string({description: 'Path of the authentication file (default: podman\'s, ${XDG_RUNTIME_DIR}/containers/auth.json).'}),
    'cert-dir': Flags.string({description: 'Use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry.'}),
    tmpdir: Flags.string({description: 'Directory for downloads (default: $TMPDIR or /tmp).'}),
    'lock-timeout': Flags.integer({description: 'Seconds to wait for another publisher holding the repository.', default: 600, min: 0}),
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Publish)
    const logger = this.makeLogger(flags)
    const summary = await publishCommand({
      images: argv as string[],
      root: flags.root,
      platform: flags.platform,
      name: flags.name,
      registry: {
        tlsVerify: flags['tls-verify'] === undefined ? undefined : flags['tls-verify'] === 'true',
        creds: flags.creds,
        authfile: flags.authfile,
        certDir: flags['cert-dir'],
      },
      tmpDir: flags.tmpdir,
      lockTimeoutMs: flags['lock-timeout'] * 1000,
      logger,
    })
    const {failure, ...result} = summary
    if (failure) {
      // With --json the summary (which names every failure) is the output; without, the error.
      if (!this.jsonEnabled()) this.error(failure.display(), {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return result
  }
}

import {Args, Command, Flags} from '@oclif/core'

import {resolveMain} from '../cli/resolve-main.js'

export default class Resolve extends Command {
  static summary = 'Print the directory of a published image, for podman run --rootfs.'
  static description = `Maps an image reference, written as for podman (ubuntu:22.04, docker.io/library/ubuntu:22.04, host:port/repo@sha256:…), to the real path of its flat root, alone on stdout:

  podman run --rootfs $(cvmfs-oci resolve IMAGE) CMD

Repositories searched, in order: --root flags, "roots" of /etc/cvmfs-oci/config.json (or $CVMFS_OCI_CONFIG), then its "repositories" (under /cvmfs), $CVMFS_OCI_ROOTS (colon-separated), /cvmfs/unpacked.cern.ch. CVMFS variant links are expanded with $CVMFS_ARCH. Exit code 3 when the image is not published.

With --rootfs podman knows nothing of the image: the cvmfs-oci OCI hook (cvmfs-oci hook install; the RPM installs it) adds the image's Env, WorkingDir and User to such containers; your --env, --workdir and --user still win.

--overlay (podman's DIR:O) mounts the read-only root under a writable overlay: use it when the container must write to its root file system, or runs as a user the image's /etc/passwd does not list (podman must then add it). Without it the container runs straight from the read-only tree.`
  static examples = [
    'podman run --rootfs $(<%= config.bin %> resolve --root /srv/repo alpine:3.20) /bin/sh -c "cat /etc/os-release"',
    'podman run --user 1000 --rootfs $(<%= config.bin %> resolve --overlay ubuntu:22.04) id',
  ]
  static args = {image: Args.string({description: 'image reference', required: true})}
  static flags = {
    root: Flags.string({description: 'Repository root to search (repeatable), before the configured ones.', multiple: true}),
    overlay: Flags.boolean({char: 'O', description: 'Append ":O": podman mounts the root as an overlay, so the container can write and run as any user.'}),
    config: Flags.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  }

  async run(): Promise<void> {
    // One parser for both entries: the fast one in resolve-main.
    const code = await resolveMain(this.argv)
    if (code !== 0) this.exit(code)
  }
}

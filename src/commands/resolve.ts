import {Args, Command, Flags} from '@oclif/core'

import {resolveMain} from '../cli/resolve-main.js'

export default class Resolve extends Command {
  static summary = 'Print the directory of a published image, for podman run --rootfs.'
  static description = `Maps an image reference, written as for podman (ubuntu:22.04, docker.io/library/ubuntu:22.04, host:port/repo@sha256:…), or an image ID, to the real path of its flat root, alone on stdout:

  podman run --rootfs $(cvmfs-oci resolve IMAGE) CMD

Repositories searched, in order: --root flags, "roots" of /etc/cvmfs-oci/config.json (or $CVMFS_OCI_CONFIG), then its "repositories" (under /cvmfs), $CVMFS_OCI_ROOTS (colon-separated), /cvmfs/unpacked.cern.ch. CVMFS variant links are expanded with $CVMFS_ARCH. Exit code 3 when the image is not published.

Image IDs, read as podman reads them: flat roots are named by the image ID (the config digest), so an ID gives .flat/<hh>/<id>. All 64 hex digits, with or without "sha256:", are only ever an ID (never the name docker.io/library/<hex>). A shorter hex string (as "podman images" and "cvmfs-oci list" print, e.g. 2f1d018c7e34) is tried as a name first, as podman does, and then as a unique ID prefix of at least 2 digits (podman takes 1; flat roots are grouped by their first 2): exit 3 when no ID starts with it, or when several do (they are named). "sha256:" with fewer than 64 digits is a usage error (exit 2), as in podman.

Roots podman cannot start read-only: with --rootfs DIR on a read-only tree (a CVMFS client mount) podman 4.3 needs /etc/mtab, /etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv, /proc, /sys and /dev to be there (it creates or mounts over them; "creating /etc/mtab symlink: read-only file system" otherwise). cvmfs-oci's publish adds them; roots made by DUCC 2.12 lack /etc/mtab, /etc/hostname and /run. Where the root lacks one and this user cannot write to it, resolve prints the ":O" form, and says so on stderr, which podman runs as an overlay. On a writable root podman adds them itself, and resolve prints the plain path.

--overlay (podman's DIR:O) always prints the ":O" form: use it when the container must write to its root file system, or runs as a user the image's /etc/passwd does not list (podman must then add it). --overlay=false never prints it (the automatic choice off). Without either, the container runs straight from the read-only tree where it can.

With --rootfs podman knows nothing of the image: the cvmfs-oci OCI hook (cvmfs-oci hook install; the RPM installs it) adds the image's Env, WorkingDir and User to such containers; your --env, --workdir and --user still win.`
  static examples = [
    'podman run --rootfs $(<%= config.bin %> resolve --root /srv/repo alpine:3.20) /bin/sh -c "cat /etc/os-release"',
    'podman run --rootfs $(<%= config.bin %> resolve 2f1d018c7e34) /bin/sh',
    'podman run --user 1000 --rootfs $(<%= config.bin %> resolve --overlay ubuntu:22.04) id',
  ]
  static args = {image: Args.string({description: 'image reference, or image ID (64 hex digits, or a unique prefix of at least 2)', required: true})}
  static flags = {
    root: Flags.string({description: 'Repository root to search (repeatable), before the configured ones.', multiple: true}),
    overlay: Flags.string({
      char: 'O',
      description: 'Print the ":O" form (podman mounts the root as an overlay, so the container can write and run as any user): bare or =true always, =false never. Default: only when the root lacks what podman needs and is read-only.',
      options: ['true', 'false'],
      helpValue: '[true|false]',
    }),
    config: Flags.string({description: 'Configuration file (default /etc/cvmfs-oci/config.json, or $CVMFS_OCI_CONFIG).'}),
  }

  async run(): Promise<void> {
    // One parser for both entries: the fast one in resolve-main.
    const code = await resolveMain(this.argv)
    if (code !== 0) this.exit(code)
  }
}

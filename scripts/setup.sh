#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) to build, run and test cvmfs-oci:
# the Debian packages the tool and its tests use, the npm dependencies, the build,
# the real CernVM-FS test kit (shared/testbed/ beside the checkout), and `cvmfs-oci` on the
# PATH (npm link). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tool needs at run time (skopeo; attr for setfattr) and what the tests
# drive for real (podman, runc, umoci, the registry, static busybox, zstd for
# zstd fixtures on Node.js 20), and what builds and checks the RPM (rpmbuild in rpm,
# rpmlint, rpm2cpio and cpio to unpack it, groff-base to render its man page).
PACKAGES=(podman runc conmon fuse-overlayfs skopeo umoci docker-registry busybox-static attr zstd rpm rpmlint rpm2cpio cpio groff-base time)

if [ "${CVMFS_OCI_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them yourself)" >&2
      exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# The real CernVM-FS 2.12 (server, client, gateway, DUCC) and apptainer the tests publish
# into and run from: the kit beside the checkout (shared/testbed/, or $CVMFS_OCI_KIT).
# Installing it takes seconds and is a no-op when it is there already.
KIT=${CVMFS_OCI_KIT:-../shared/testbed}
if [ "${CVMFS_OCI_SKIP_KIT:-}" != 1 ]; then
  if [ -x "$KIT/install.sh" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: the CernVM-FS test kit installs as root: run this as root (or CVMFS_OCI_SKIP_KIT=1 to skip it)" >&2
      exit 1
    fi
    "$KIT/install.sh" cvmfs apptainer gateway
  else
    echo "setup: no CernVM-FS test kit at $KIT/install.sh: the tests that publish into real CVMFS repositories will fail until it is installed (set CVMFS_OCI_KIT to where it is)" >&2
  fi
fi

npm ci --no-audit --no-fund
npm run build
npm link --no-audit --no-fund >/dev/null
echo "setup: $(command -v cvmfs-oci) -> $(cvmfs-oci --version)" >&2

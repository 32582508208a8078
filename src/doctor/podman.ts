/**
 * Does this node's podman have what cvmfs-oci relies on? Two things, each with the first
 * podman release that has it:
 *
 * - the `precreate` hook stage (a podman extension: the hook gets the proposed runtime
 *   config and podman runs what it prints): added by containers/podman#1830, "hooks: Add
 *   pre-create hooks for runtime-config manipulation" (reviewed 2018-11-29; podman.1 has
 *   documented the stage since). The first release carrying it is 1.0.0 at the latest
 *   (January 2019, the release after the 0.12.1.x series of December 2018), so we ask for 1.0.0.
 * - `--rootfs DIR:O` (an overlay over a read-only root): added by containers/podman#11170,
 *   "rootfs: Add support for rootfs-overlay" (opened 2021-08-09, merged late August 2021,
 *   with the buildah 1.23 it depends on), so first released in podman 3.4.0 (the 3.3.x
 *   series was branched before it and ships buildah 1.22).
 *
 * Checked for real with podman 4.3.1 (Debian 12) by the test suite; EL8.6+ and EL9 ship 4.x.
 */
import semver from 'semver'

import {ExternalError} from '../errors.js'
import {run} from '../exec.js'
import type {Logger} from '../log.js'
import type {Finding} from './report.js'

export interface PodmanFeature {
  /** What cvmfs-oci uses, as a person names it. */
  feature: string
  /** The first podman version that has it. */
  since: string
  /** What breaks without it. */
  without: string
}

export const PODMAN_FEATURES: readonly PodmanFeature[] = [
  {feature: 'precreate hooks', since: '1.0.0', without: 'the cvmfs-oci hook cannot give --rootfs containers their image Env, WorkingDir and User'},
  {feature: '--rootfs DIR:O', since: '3.4.0', without: '`resolve --overlay` roots do not start (containers that write to / or run as a user the image does not list)'},
]

/** The version in `podman --version` output (`podman version 4.9.4-rhel` → `4.9.4-rhel`). */
export function parsePodmanVersion(output: string): string | undefined {
  return /\bversion\s+(\S+)/.exec(output)?.[1]
}

/** Findings for a podman of this version. */
export function assessPodman(version: string): Finding[] {
  const parsed = semver.coerce(version)
  if (!parsed) {
    return [{check: 'podman', status: 'warning', message: `cannot read podman's version from "${version}"; cannot tell whether it has ${PODMAN_FEATURES.map((f) => f.feature).join(' and ')}`}]
  }
  const missing = PODMAN_FEATURES.filter((f) => semver.lt(parsed, f.since))
  if (missing.length === 0) {
    return [{check: 'podman', status: 'ok', message: `podman ${version}: ${PODMAN_FEATURES.map((f) => `${f.feature} (since ${f.since})`).join(', ')}`}]
  }
  return missing.map((f) => ({
    check: 'podman' as const,
    status: 'problem' as const,
    message: `podman ${version} is too old for ${f.feature} (podman >= ${f.since}): ${f.without}`,
    fix: `upgrade podman to ${f.since} or newer (EL8/EL9: dnf update podman)`,
  }))
}

export async function checkPodman(logger?: Logger): Promise<Finding[]> {
  let output: string
  try {
    const result = await run('podman', ['--version'], {logger})
    output = result.stdout
  } catch (error) {
    if (error instanceof ExternalError && error.code === 'E_MISSING_PROGRAM') {
      return [{check: 'podman', status: 'problem', message: 'podman is not installed (or not on PATH)', fix: 'install podman (dnf install podman)'}]
    }
    if (error instanceof ExternalError) return [{check: 'podman', status: 'problem', message: `podman --version failed: ${error.message}`, fix: 'repair the podman installation'}]
    throw error
  }
  const version = parsePodmanVersion(output)
  if (!version) return [{check: 'podman', status: 'warning', message: `cannot read podman's version from: ${output.trim()}`}]
  return assessPodman(version)
}

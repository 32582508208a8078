/**
 * Node.js versions: the one running cvmfs-oci and the one the hook file names. Both must
 * satisfy `engines.node` of our package.json, the same range the RPM requires.
 */
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

import semver from 'semver'

import {readFile} from '../fs-promises.js'
import type {Finding} from './report.js'

const PACKAGE_JSON = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json')

/** `engines.node` of the installed package.json (">=20"). */
export async function requiredNodeRange(): Promise<string> {
  const pkg = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as {engines?: {node?: string}}
  return pkg.engines?.node ?? '*'
}

/** Whether `version` (`v20.11.1`, `20.11.1`) satisfies `range`; a version that does not parse does not. */
export function nodeSatisfies(version: string, range: string): boolean {
  const parsed = semver.coerce(version)
  return parsed !== null && semver.satisfies(parsed, range)
}

/** The Node.js running this command. */
export function checkRunningNode(version: string, range: string, execPath: string): Finding {
  if (nodeSatisfies(version, range)) return {check: 'node', status: 'ok', message: `Node.js ${version} at ${execPath} (cvmfs-oci needs ${range})`}
  return {
    check: 'node',
    status: 'problem',
    message: `Node.js ${version} at ${execPath} is too old: cvmfs-oci needs ${range}`,
    fix: `install Node.js ${range} (EL8/EL9: dnf module enable nodejs:20 && dnf install nodejs)`,
  }
}

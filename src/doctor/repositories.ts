/**
 * The configuration file and the repositories `resolve` searches: each one configured must
 * be mounted and readable. /cvmfs/unpacked.cern.ch, searched last by default, is optional
 * unless named explicitly.
 */
import {basename, resolve} from 'node:path'

import {CvmfsOciError} from '../errors.js'
import {readdir, stat} from '../fs-promises.js'
import {DEFAULT_CONFIG_PATH, DEFAULT_ROOT, readConfig, searchRoots, type Config} from '../layout/roots.js'
import type {Finding} from './report.js'

export interface RepositoriesOptions {
  /** `--root` flags. */
  flagRoots?: string[]
  env: NodeJS.ProcessEnv
  /** `--config` (default $CVMFS_OCI_CONFIG, then /etc/cvmfs-oci/config.json). */
  configPath?: string
}

/** The flat roots' directory of a repository: where publish and DUCC put the images. */
const FLAT_DIR = '.flat'

function configFinding(path: string): {config?: Config; finding: Finding; valid: boolean} {
  try {
    const config = readConfig(path)
    if (!config) return {valid: true, finding: {check: 'config', status: 'ok', message: `${path} does not exist: resolve searches $CVMFS_OCI_ROOTS and ${DEFAULT_ROOT}`}}
    const roots = config.roots?.length ?? 0
    return {config, valid: true, finding: {check: 'config', status: 'ok', message: `${path}: valid, ${roots} root${roots === 1 ? '' : 's'}`}}
  } catch (error) {
    if (!(error instanceof CvmfsOciError)) throw error
    return {valid: false, finding: {check: 'config', status: 'problem', message: error.message.replaceAll('\n', ' '), fix: error.hint}}
  }
}

/** What is wrong with one repository root, if anything. */
async function rootFinding(root: string, required: boolean, configPath: string): Promise<Finding> {
  const missing: Finding['status'] = required ? 'problem' : 'warning'
  const mountFix = root.startsWith('/cvmfs/')
    ? `mount it: add ${basename(root)} to CVMFS_REPOSITORIES in /etc/cvmfs/default.local, then cvmfs_config probe ${basename(root)}`
    : `mount or create it, or remove it from ${configPath} / $CVMFS_OCI_ROOTS`
  const info = await stat(root).catch((error: NodeJS.ErrnoException) => error)
  if (info instanceof Error) {
    if (info.code === 'ENOENT' || info.code === 'ENOTDIR') {
      return {check: 'repositories', status: missing, message: `${root} does not exist (not mounted?)${required ? '' : `: optional, resolve searches it last`}`, fix: mountFix}
    }
    return {check: 'repositories', status: 'problem', message: `${root} cannot be read: ${info.message}`, fix: `make ${root} readable for the users who run containers`}
  }
  if (!info.isDirectory()) return {check: 'repositories', status: 'problem', message: `${root} is not a directory`, fix: `remove it from ${configPath} / $CVMFS_OCI_ROOTS`}
  const names = await readdir(root).catch((error: NodeJS.ErrnoException) => error)
  if (names instanceof Error) return {check: 'repositories', status: 'problem', message: `${root} cannot be listed: ${names.message}`, fix: `make ${root} readable for the users who run containers`}
  if (!names.includes(FLAT_DIR)) {
    return {check: 'repositories', status: 'warning', message: `${root} is readable but holds no published images (no ${FLAT_DIR}/)`, fix: `publish into it (cvmfs-oci publish --root ${root} IMAGE), or remove it from ${configPath}`}
  }
  return {check: 'repositories', status: 'ok', message: `${root}: mounted, readable, images published (${FLAT_DIR}/)`}
}

/** Findings for the configuration and each root, and the roots (for the storage.conf check). */
export async function checkRepositories(options: RepositoriesOptions): Promise<{findings: Finding[]; roots: string[]}> {
  const configPath = options.configPath ?? options.env.CVMFS_OCI_CONFIG ?? DEFAULT_CONFIG_PATH
  const {config, finding, valid} = configFinding(configPath)
  // With a broken file, look at the other roots still: '' names no file (ENOENT), so the config adds none.
  const roots = searchRoots({flagRoots: options.flagRoots, env: options.env, configPath: valid ? configPath : ''})
  const named = [...(options.flagRoots ?? []), ...(config?.roots ?? []), ...(options.env.CVMFS_OCI_ROOTS ?? '').split(':').filter(Boolean)]
  const defaultNamed = named.some((root) => resolve(root) === DEFAULT_ROOT)
  const findings = [finding]
  for (const root of roots) findings.push(await rootFinding(root, root !== DEFAULT_ROOT || defaultNamed, configPath))
  return {findings, roots}
}

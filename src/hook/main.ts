/**
 * The OCI hook (stage `precreate`): podman writes the proposed runtime config on
 * stdin and runs the config printed on stdout. For a container whose root is a
 * published flat root it adds the image's Env, WorkingDir and User; every other
 * container gets its config back byte for byte. It runs before every container
 * start on the node, so it loads Node built-ins and these few modules only, and it
 * never fails a container: anything unexpected is a warning on stderr.
 */
import {readFileSync, realpathSync} from 'node:fs'
import {join} from 'node:path'

import {fdOutput} from '../output.js'
import {applyImageConfig, type RuntimeSpec} from './apply.js'
import {findFlatRoot} from './flat-root.js'
import {findImageConfig} from './image-config.js'
import {resolveUser} from './users.js'

/** All of stdin (podman writes the config into a pipe and closes it). */
function readStdin(): Buffer {
  return readFileSync(0)
}

/** A file of the image (etc/passwd …), never through a symlink that leaves the root. */
function readImageFile(root: string, rel: string): string {
  try {
    const real = realpathSync(join(root, rel))
    if (!real.startsWith(`${root}/`)) return ''
    return readFileSync(real, 'utf8')
  } catch {
    return ''
  }
}

/** Transform one runtime config; returns the bytes to print and warnings. */
export function filterConfig(input: Buffer, readMountinfo: () => string): {output: Buffer; warnings: string[]; changed: string[]} {
  const warnings: string[] = []
  let spec: RuntimeSpec
  try {
    spec = JSON.parse(input.toString('utf8')) as RuntimeSpec
  } catch {
    return {output: input, warnings: ['stdin is not a runtime config (JSON); passing it through'], changed: []}
  }
  const rootPath = spec?.root?.path
  if (typeof rootPath !== 'string' || !spec.process) return {output: input, warnings, changed: []}
  const flat = findFlatRoot(rootPath, readMountinfo)
  if (!flat) return {output: input, warnings, changed: []}
  try {
    const found = findImageConfig(flat)
    if (!found) {
      warnings.push(`no image config found for ${flat.path}; the container keeps podman's defaults`)
      return {output: input, warnings, changed: []}
    }
    const changed = applyImageConfig(spec, found.config, (user) =>
      resolveUser(user, readImageFile(flat.path, 'etc/passwd'), readImageFile(flat.path, 'etc/group')),
    )
    return {output: changed.length ? Buffer.from(JSON.stringify(spec)) : input, warnings, changed}
  } catch (error) {
    warnings.push(`cannot apply the image config of ${flat.path}: ${(error as Error).message}; the container keeps podman's defaults`)
    return {output: input, warnings, changed: []}
  }
}

export function main(): void {
  let input: Buffer = Buffer.alloc(0)
  let result: {output: Buffer; warnings: string[]}
  try {
    input = readStdin()
    result = filterConfig(input, () => readFileSync('/proc/self/mountinfo', 'utf8'))
  } catch (error) {
    result = {output: input, warnings: [(error as Error).message]}
  }
  // Straight to the descriptors (src/output.ts): no stream is built for one write each.
  for (const warning of result.warnings) fdOutput(2).write(`cvmfs-oci hook: warning: ${warning}\n`)
  fdOutput(1).write(result.output)
}

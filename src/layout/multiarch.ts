/**
 * The `.multiarch/` trees on disk: which architecture directories exist, which of them
 * hold a name, and the alias links that make the names CVMFS clients give CVMFS_ARCH
 * (`uname -m`) lead to the OCI-named directories (docs/layout.md, "Multi-platform names").
 */
import {join} from 'node:path'

import {lstat, readlink, rm} from '../fs-promises.js'
import {ARCH_ALIASES} from './arch-names.js'
import {realArchDirs} from './exists.js'
import {METADATA_DIR, metadataDirRel, MULTIARCH_DIR, multiarchLinkRel, multiarchMetadataDirRel} from './paths.js'
import {removeAndPrune} from './remove.js'
import {replaceSymlink} from './write.js'

/**
 * The architecture directories that hold `name`: a `.multiarch/<arch>/<name>` link or
 * `.metadata/.multiarch/<arch>/<name>/` metadata (DUCC writes both), in directory order.
 */
export async function platformDirsOf(root: string, name: string): Promise<string[]> {
  const arches = new Set([...(await realArchDirs(join(root, MULTIARCH_DIR))), ...(await realArchDirs(join(root, METADATA_DIR, MULTIARCH_DIR)))])
  const found: string[] = []
  for (const arch of [...arches].sort()) {
    for (const rel of [multiarchLinkRel(arch, name), multiarchMetadataDirRel(arch, name)]) {
      if (await lstat(join(root, rel)).then(() => true, () => false)) {
        found.push(arch)
        break
      }
    }
  }
  return found
}

/**
 * Make the alias links of a `.multiarch`-like directory match its real directories: each
 * alias of {@link ARCH_ALIASES} whose name is not a real directory links (relatively) to
 * its first candidate that is one; an alias with none is removed. A missing directory
 * stays missing.
 */
export async function syncArchAliases(dir: string): Promise<void> {
  if (!(await lstat(dir).then(() => true, () => false))) return
  for (const {alias, target, current} of await aliasStates(dir)) {
    if (target === current) continue
    if (target === undefined) await rm(join(dir, alias), {force: true})
    else await replaceSymlink(join(dir, alias), target)
  }
}

/** Whether {@link syncArchAliases} would change nothing. */
export async function aliasesInStep(dir: string): Promise<boolean> {
  return (await aliasStates(dir)).every(({target, current}) => target === current)
}

/** Each alias that is no real directory: the target it should have (none: no link) and the one it has. */
async function aliasStates(dir: string): Promise<{alias: string; target?: string; current?: string}[]> {
  const real = new Set(await realArchDirs(dir))
  const states = []
  for (const [alias, candidates] of Object.entries(ARCH_ALIASES)) {
    if (real.has(alias)) continue
    states.push({alias, target: candidates.find((c) => real.has(c)), current: await readlink(join(dir, alias)).catch(() => undefined)})
  }
  return states
}

/**
 * Remove what another form of `name` left (in the change that publishes it): publishing
 * it for one platform (`keep` undefined) removes every `.multiarch/<arch>/<name>` link and
 * its metadata; publishing it for the platforms `keep` removes those of other platforms,
 * and `.metadata/<name>/` (DUCC keeps a multi-platform name's metadata per platform
 * only). Alias links then follow the directories left. Returns what it removed.
 */
export async function removeOtherForms(root: string, name: string, keep?: readonly string[]): Promise<string[]> {
  return [...(await removeOtherMetadata(root, name, keep)), ...(await removeOtherLinks(root, name, keep))]
}

/** The part of {@link removeOtherForms} below `.metadata`. */
export async function removeOtherMetadata(root: string, name: string, keep?: readonly string[]): Promise<string[]> {
  const removed: string[] = []
  if (keep !== undefined && (await dropPath(root, metadataDirRel(name)))) removed.push(metadataDirRel(name))
  for (const arch of await otherPlatformDirs(root, name, keep)) {
    if (await dropPath(root, multiarchMetadataDirRel(arch, name))) removed.push(multiarchMetadataDirRel(arch, name))
  }
  return removed
}

/** The part of {@link removeOtherForms} below `.multiarch`: links, then the alias links. */
export async function removeOtherLinks(root: string, name: string, keep?: readonly string[]): Promise<string[]> {
  const removed: string[] = []
  for (const arch of await otherPlatformDirs(root, name, keep)) {
    if (await dropPath(root, multiarchLinkRel(arch, name))) removed.push(multiarchLinkRel(arch, name))
  }
  await syncArchAliases(join(root, MULTIARCH_DIR))
  return removed
}

/** The architecture directories holding `name` that are not in `keep`. */
export async function otherPlatformDirs(root: string, name: string, keep?: readonly string[]): Promise<string[]> {
  return (await platformDirsOf(root, name)).filter((arch) => !keep?.includes(arch))
}

/** Remove `rel` and the directories it leaves empty, if it is there; whether it was. */
async function dropPath(root: string, rel: string): Promise<boolean> {
  if (!(await lstat(join(root, rel)).then(() => true, () => false))) return false
  await removeAndPrune(root, rel)
  return true
}

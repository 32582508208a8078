/**
 * Is a container's root a published flat root? Pure functions over paths and
 * /proc/self/mountinfo text: a flat root is recognised by its place in the layout,
 * `<repository>/.flat/<hh>/<64 hex>` (ours or DUCC's, any repository), either as
 * `root.path` itself or as the lower directory of the overlay podman mounts for
 * `--rootfs DIR:O`.
 */

export interface FlatRoot {
  /** The flat root directory. */
  path: string
  /** The repository root holding it. */
  repository: string
  /** sha256 hex of the image config (the directory's name). */
  configHex: string
}

const FLAT = /^(.*)\/\.flat\/([0-9a-f]{2})\/([0-9a-f]{64})\/*$/

/** The flat root a path names, if it is one. */
export function flatRootOf(path: string): FlatRoot | undefined {
  const m = FLAT.exec(path)
  if (!m || m[3]!.slice(0, 2) !== m[2]) return undefined
  return {path: path.replace(/\/+$/, ''), repository: m[1] || '/', configHex: m[3]!}
}

/** Undo mountinfo's octal escapes (`\040` for a space, …). */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)))
}

/** Split an overlay option value on unescaped `sep`; `unescape` drops the backslashes. */
function splitEscaped(value: string, sep: string, unescape: boolean): string[] {
  const parts: string[] = []
  let current = ''
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!
    if (c === '\\' && i + 1 < value.length) current += unescape ? value[++i] : c + value[++i]
    else if (c === sep) {
      parts.push(current)
      current = ''
    } else current += c
  }
  parts.push(current)
  return parts
}

/**
 * The lower directories of the overlay mounted at `mountPoint`, from the text of
 * /proc/self/mountinfo (fields: id parent dev root mountpoint opts … - fstype source superopts).
 */
export function overlayLowerDirs(mountinfo: string, mountPoint: string): string[] {
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ')
    if (fields.length < 10 || unescapeMountinfo(fields[4]!) !== mountPoint) continue
    const dash = fields.indexOf('-')
    if (dash < 0 || fields[dash + 1] !== 'overlay') continue
    const superOptions = unescapeMountinfo(fields.slice(dash + 3).join(' '))
    for (const option of splitEscaped(superOptions, ',', false)) {
      if (option.startsWith('lowerdir=')) return splitEscaped(option.slice('lowerdir='.length), ':', true).filter(Boolean)
    }
  }
  return []
}

/** The flat root of a container: `root.path` itself, or the lowest dir of its `:O` overlay. */
export function findFlatRoot(rootPath: string, readMountinfo: () => string): FlatRoot | undefined {
  const direct = flatRootOf(rootPath)
  if (direct) return direct
  // podman mounts `DIR:O` at <runroot>/overlay-containers/<id>/rootfs/merge.
  if (!rootPath.endsWith('/merge')) return undefined
  const lowers = overlayLowerDirs(readMountinfo(), rootPath)
  for (const lower of lowers.reverse()) {
    const flat = flatRootOf(lower)
    if (flat) return flat
  }
  return undefined
}

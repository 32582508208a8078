/**
 * Checks that the real programs the tests drive are installed, and says which
 * Debian package brings each one when it is not. Tests call this first so a
 * missing tool is a loud failure, never a silent skip.
 */
import {accessSync, closeSync, constants, openSync, readSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import path from 'node:path'

/** Where the static busybox of Debian's `busybox-static` lives. */
export const BUSYBOX_PATH = '/bin/busybox'

/** Tool name → Debian package that installs it. */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  podman: 'podman',
  conmon: 'conmon',
  runc: 'runc',
  'fuse-overlayfs': 'fuse-overlayfs',
  skopeo: 'skopeo',
  umoci: 'umoci',
  'docker-registry': 'docker-registry',
  busybox: 'busybox-static',
  setfattr: 'attr',
  getfattr: 'attr',
  attr: 'attr',
  getcap: 'libcap2-bin',
  chattr: 'e2fsprogs',
  mount: 'mount',
  umount: 'mount',
  mountpoint: 'util-linux',
  flock: 'util-linux',
  setarch: 'util-linux',
  runuser: 'util-linux',
  dash: 'dash',
  bash: 'bash',
  unshare: 'util-linux',
  tar: 'tar',
  mknod: 'coreutils',
  script: 'bsdutils',
  stty: 'coreutils',
  zstd: 'zstd',
}

// runc and mount live in sbin; a non-root PATH may lack it, podman does not care.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin']

// Only the busybox check (which runs it) is worth caching; PATH look-ups are cheap
// and must see PATH changes.
let busyboxChecked = false

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Absolute path of `name` on PATH (or sbin), or undefined. */
export function whichTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

/** True when the ELF file has a PT_INTERP program header (i.e. is dynamically linked). */
export function elfHasInterpreter(file: string): boolean {
  const fd = openSync(file, 'r')
  try {
    const ident = Buffer.alloc(64)
    readSync(fd, ident, 0, 64, 0)
    if (ident.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF executable`)
    const is64 = ident[4] === 2
    const le = ident[5] === 1
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o))
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
    const phoff = is64 ? Number(le ? ident.readBigUInt64LE(32) : ident.readBigUInt64BE(32)) : u32(ident, 28)
    const phentsize = u16(ident, is64 ? 54 : 42)
    const phnum = u16(ident, is64 ? 56 : 44)
    const table = Buffer.alloc(phentsize * phnum)
    readSync(fd, table, 0, table.length, phoff)
    const PT_INTERP = 3
    for (let i = 0; i < phnum; i++) if (u32(table, i * phentsize) === PT_INTERP) return true
    return false
  } finally {
    closeSync(fd)
  }
}

function checkBusybox(): string | undefined {
  if (!isExecutable(BUSYBOX_PATH)) {
    return `busybox not found at ${BUSYBOX_PATH}: install the Debian package busybox-static (see .ci/run)`
  }
  if (elfHasInterpreter(BUSYBOX_PATH)) {
    return `${BUSYBOX_PATH} is dynamically linked, so it cannot run alone in a test image: install the Debian package busybox-static (not busybox) (see .ci/run)`
  }
  const run = spawnSync(BUSYBOX_PATH, ['true'])
  if (run.status !== 0) {
    return `${BUSYBOX_PATH} true failed (status ${run.status}, ${run.error?.message ?? run.stderr.toString()}): reinstall the Debian package busybox-static (see .ci/run)`
  }
  return undefined
}

/**
 * Make sure the named programs are installed.
 *
 * @param names - tool names from {@link TOOL_PACKAGES} (`busybox` means a
 *   static `/bin/busybox` that runs).
 * @returns the absolute path of each tool.
 * @throws Error listing every missing tool with the Debian package to install,
 *   e.g. "skopeo not found on PATH: install the Debian package skopeo (see .ci/run)".
 */
export function requireTools(...names: string[]): Record<string, string> {
  const problems: string[] = []
  const paths: Record<string, string> = {}
  for (const name of names) {
    const pkg = TOOL_PACKAGES[name]
    if (pkg === undefined) throw new Error(`requireTools: unknown tool "${name}" (known: ${Object.keys(TOOL_PACKAGES).join(', ')})`)
    if (name === 'busybox') {
      const problem = busyboxChecked ? undefined : checkBusybox()
      if (problem) problems.push(problem)
      else {
        busyboxChecked = true
        paths[name] = BUSYBOX_PATH
      }
      continue
    }
    const where = whichTool(name)
    if (where === undefined) problems.push(`${name} not found on PATH: install the Debian package ${pkg} (see .ci/run)`)
    else paths[name] = where
  }
  if (problems.length > 0) throw new Error(problems.join('\n'))
  return paths
}

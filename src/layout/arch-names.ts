/**
 * Architecture names in `.multiarch/`. DUCC names a platform's directory after the index
 * entry (`amd64`, `arm64:v8`), the OCI names; CVMFS clients expand `$(CVMFS_ARCH)` to
 * `uname -m` (`x86_64`, `aarch64`; CVMFS 2.12 sets it so and lets no configuration
 * override it). Alias links bridge the two. Pure, and small: `resolve` loads it.
 */

/**
 * Alias → the directories it may lead to, first existing one wins. DUCC's table
 * (cvmfs/cvmfs ducc, `archAliases`), plus the `uname -m` names of 32-bit x86 and ARM
 * machines DUCC's lacks (`i686`, `armv7l`, `armv6l`), and `arm:v7` for `armhf`.
 */
export const ARCH_ALIASES: Readonly<Record<string, readonly string[]>> = {
  aarch64: ['arm64', 'arm64:v8'],
  arm64: ['arm64:v8'],
  armhf: ['arm', 'arm:v7'],
  armel: ['arm:v6'],
  i386: ['386'],
  x86_64: ['amd64'],
  'x86-64': ['amd64'],
  i686: ['386'],
  armv7l: ['arm:v7', 'arm'],
  armv6l: ['arm:v6'],
}

/** `linux/arm64/v8` or `arm64/v8` → the directory spelling `arm64:v8`. */
export function archDirSpelling(arch: string): string {
  return arch.replace(/^linux\//, '').replace('/', ':')
}

/**
 * The `.multiarch/` directories to try for an architecture, in order: as given, the
 * directories its alias leads to, then without its variant; a bare `arm64`/`arm` also
 * tries OCI's implied variant (`v8`/`v7`).
 */
export function archDirCandidates(arch: string): string[] {
  const given = archDirSpelling(arch)
  const bare = given.split(':')[0]!
  const implied: Record<string, string> = {arm64: 'arm64:v8', arm: 'arm:v7'}
  const dirs = [given, ...(ARCH_ALIASES[given] ?? []), bare]
  if (given === bare && implied[bare]) dirs.push(implied[bare])
  return [...new Set(dirs.filter((d) => d !== ''))]
}

/** Node's process.arch to the OCI architecture name. */
const HOST_ARCH: Record<string, string> = {x64: 'amd64', arm64: 'arm64', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', arm: 'arm', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle'}

/** OCI architecture of this host (bare: `arm64`, not `arm64:v8`). */
export function hostArch(): string {
  return HOST_ARCH[process.arch] ?? process.arch
}

/**
 * The real apptainer 1.4.5 of the components kit (../shared/testbed, `install.sh
 * apptainer`), run as root or as an unprivileged user.
 *
 * As root, apptainer asks for every capability it knows; on machines whose bounding set
 * lacks some (VMs and containers: the kit's README, fact 4) it fails with "Requesting
 * capability set … while permitted capability set is …" unless told to drop them.
 */
import {readFileSync} from 'node:fs'

import {exec, type ExecResult} from './exec.js'
import {whichTool} from './tools.js'

/** Linux capability names by number (capability.h), as `--drop-caps` takes them. */
const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const

/**
 * Env values that break naive quoting: quotes, `$`, backslashes, backticks, newlines,
 * braces, non-ASCII, control characters, an empty one.
 */
export const NASTY_ENV: Readonly<Record<string, string>> = {
  QUOTES: `a "b" 'c' $c d`,
  DOLLAR: '$HOME ${HOME} $(id) `id` $((1+1))',
  BACKSLASH: 'one\\two\\\\three \\n \\',
  SINGLE: "it's ''' '\\''",
  NEWLINES: 'line one\nline two\n\n',
  BRACES: '}{}} ${x:-y}}',
  UNICODE: 'é€😀 ü',
  CONTROL: '\x01\x1b[31m\x7f\t',
  EMPTY: '',
  DASH: '-n',
  EQUALS: 'a=b==c',
  SPACES: '  lead and trail  ',
  GLOB: '* ? [a] ~ ~root',
  PERCENT: '%s %d %%',
}

/** Fail (never skip) when apptainer is missing. */
export function requireApptainer(): void {
  if (whichTool('apptainer') === undefined) {
    throw new Error('apptainer not found on PATH: run `../shared/testbed/install.sh apptainer` as root (the real components kit)')
  }
}

/** The capabilities apptainer asks for as root that this process's bounding set (`CapBnd`) lacks. */
export function missingCapabilities(status = readFileSync('/proc/self/status', 'utf8')): string[] {
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)
  if (!line) throw new Error('no CapBnd line in /proc/self/status')
  const bounding = BigInt(`0x${line[1]}`)
  return CAPABILITIES.filter((_, bit) => (bounding & (1n << BigInt(bit))) === 0n).map((name) => `CAP_${name}`)
}

/** Who runs apptainer: root, or `nobody` (apptainer then uses user namespaces, as on a worker node). */
export type ApptainerUser = 'root' | 'nobody'

export interface ApptainerOptions {
  user?: ApptainerUser
  /** Environment variables for apptainer itself (`APPTAINERENV_*`, …). */
  env?: Record<string, string>
  /** Options before the image (after the action and, as root, `--drop-caps`). */
  options?: string[]
  /** apptainer's own options before the action (`-c CONFIG`, …). */
  global?: string[]
  input?: string
}

/**
 * `apptainer -q ACTION [--drop-caps …] OPTIONS IMAGE ARGS…` (root) or, as `nobody`,
 * `runuser -u nobody -- env HOME=/tmp … apptainer -q ACTION --no-home …`, from `/` (a
 * directory every user can enter). Never throws on a non-zero exit.
 */
export async function apptainer(action: 'exec' | 'run' | 'inspect', image: string, args: string[] = [], opts: ApptainerOptions = {}): Promise<ExecResult> {
  const user = opts.user ?? 'root'
  const drop = action !== 'inspect' && user === 'root' ? missingCapabilities() : []
  const actionArgs = [...(drop.length > 0 ? ['--drop-caps', drop.join(',')] : []), ...(user === 'nobody' && action !== 'inspect' ? ['--no-home'] : []), ...(opts.options ?? [])]
  const line = ['apptainer', '-q', ...(opts.global ?? []), action, ...actionArgs, image, ...args]
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`)
  const [cmd, ...rest] = user === 'root' ? ['env', ...env, ...line] : ['runuser', '-u', 'nobody', '--', 'env', 'HOME=/tmp', ...env, ...line]
  return exec(cmd!, rest, {reject: false, cwd: '/', input: opts.input ?? '', timeoutMs: 120_000})
}

/**
 * `apptainer build --sandbox OUT oci:LAYOUT` — apptainer's own conversion of an OCI
 * layout holding exactly one image (no network), with its cache and temp files in `work`.
 */
export async function apptainerSandbox(layout: string, out: string, work: string): Promise<void> {
  await exec('apptainer', ['-q', 'build', '--sandbox', out, `oci:${layout}`], {
    cwd: '/',
    env: {APPTAINER_CACHEDIR: `${work}/apptainer-cache`, APPTAINER_TMPDIR: work},
  })
}

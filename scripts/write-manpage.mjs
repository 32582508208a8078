#!/usr/bin/env node
// Write the cvmfs-oci(1) man page from oclif.manifest.json: every command with its
// summary, description, arguments, flags and examples, so the page says what `--help`
// says. Exit codes, files and environment are the ones README.md documents.
//
//   node scripts/write-manpage.mjs [MANIFEST] [OUTPUT]   (default: ./oclif.manifest.json, stdout)
//   SOURCE_DATE_EPOCH fixes the date on the page (default: today).
import {readFile, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** Text safe in a roff line: backslashes, hyphens as minus signs, non-ASCII as `\[uXXXX]`, no control character first. */
function roff(text) {
  const escaped = String(text)
    .replaceAll('\\', '\\e')
    .replaceAll('-', '\\-')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`)
  return escaped.replace(/^[.']/gm, '\\&$&')
}

/** Paragraphs of a description, each as its own `.PP` block. */
function paragraphs(text) {
  return String(text ?? '')
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => `.PP\n${roff(p.replaceAll('\n', ' '))}`)
}

const EXIT_CODES = [
  [0, 'success'],
  [1, 'the user must act: a registry needs --tls-verify=false or credentials, the repository directory is wrong; doctor: something on the node is broken'],
  [2, 'usage: a flag, an argument or an image reference is malformed'],
  [3, 'not found: the image is not published (resolve), or does not exist at its source (publish)'],
  [4, 'verification failed: schema, digest, size or DiffID mismatch, or a hostile tar entry; hook validate: a hook file podman would reject'],
  [5, 'an external program failed or is missing (skopeo, setfattr, podman)'],
  [6, 'busy: another publisher holds the repository lock'],
  [70, 'internal error: a bug in cvmfs-oci'],
]

const FILES = [
  ['/etc/cvmfs-oci/config.json', 'the configuration: {"roots": ["/cvmfs/REPOSITORY", ...]}, the repositories resolve and list search (schema: /usr/lib/cvmfs-oci/schemas/config.schema.json)'],
  ['/usr/share/containers/oci/hooks.d/cvmfs-oci.json', 'the OCI hook file podman reads; it runs /usr/libexec/cvmfs-oci/cvmfs-oci-hook at the precreate stage'],
  ['/usr/lib/cvmfs-oci/', 'the application and the Node.js modules it bundles'],
]

const ENVIRONMENT = [
  ['CVMFS_OCI_CONFIG', 'the configuration file to read instead of /etc/cvmfs-oci/config.json'],
  ['CVMFS_OCI_ROOTS', 'more repository roots to search, colon-separated, after the configured ones'],
  ['CVMFS_ARCH', 'the value of $(CVMFS_ARCH) in CVMFS variant links (default amd64)'],
  ['CONTAINERS_CONF, CONTAINERS_STORAGE_CONF', 'the containers.conf and storage.conf doctor reads, as podman does'],
  ['CVMFS_OCI_NO_FAST_PATH', 'when set, every command runs through oclif instead of its own bundled file (the same flags, messages and exit codes; slower to start)'],
]

function flagLines(flag) {
  const names = [flag.char ? `\\-${flag.char}, ` : '', `\\-\\-${roff(flag.name)}`].join('')
  const value = flag.type === 'option' ? ` \\fI${flag.options?.length ? roff(flag.options.join('|')) : 'VALUE'}\\fR` : ''
  const no = flag.allowNo ? `, \\-\\-no\\-${roff(flag.name)}` : ''
  return ['.TP', `.B ${names}${no}${value}`, roff(`${flag.description ?? ''}${flag.multiple && !/repeatable/.test(flag.description ?? '') ? ' (repeatable)' : ''}`)]
}

/**
 * The man page for the commands of an oclif manifest.
 *
 * @param manifest - parsed oclif.manifest.json
 * @param pkg - parsed package.json (name, version, description)
 * @param date - `YYYY-MM-DD` for the page header
 */
export function manPage(manifest, pkg, date) {
  const bin = pkg.oclif?.bin ?? pkg.name
  const commands = Object.values(manifest.commands)
    .filter((c) => !c.hidden)
    .sort((a, b) => a.id.localeCompare(b.id))
  const lines = [
    `.\\" Generated from oclif.manifest.json by scripts/write-manpage.mjs: do not edit.`,
    `.TH ${bin.toUpperCase()} 1 "${date}" "${bin} ${pkg.version}" "User Commands"`,
    '.SH NAME',
    `${roff(bin)} \\- ${roff(pkg.description)}`,
    '.SH SYNOPSIS',
    `.B ${roff(bin)}`,
    '.I COMMAND',
    '[\\fIFLAGS\\fR] [\\fIARGUMENTS\\fR]',
    '.br',
    `.B ${roff(bin)}`,
    '\\-\\-version | \\-\\-help',
    '.SH DESCRIPTION',
    roff('Publishers unpack OCI images into a CernVM-FS repository in the layout of DUCC, the CVMFS container converter; users run them with'),
    '.PP',
    '.RS',
    `.B podman run \\-\\-rootfs $(${roff(bin)} resolve IMAGE) COMMAND`,
    '.RE',
    '.PP',
    roff('and CVMFS fetches only the bytes the container reads. The OCI hook gives such containers their image\'s Env, WorkingDir and User. Every command documents its flags with --help.'),
    '.SH COMMANDS',
  ]
  for (const command of commands) {
    const words = command.id.replaceAll(':', ' ')
    const args = Object.values(command.args ?? {}).map((a) => (a.required ? `\\fI${roff(a.name.toUpperCase())}\\fR` : `[\\fI${roff(a.name.toUpperCase())}\\fR]`))
    lines.push(`.SS "${roff(`${bin} ${words}`)}${args.length ? ` ${args.join(' ')}` : ''}"`)
    if (command.summary) lines.push(roff(command.summary))
    lines.push(...paragraphs(command.description))
    for (const arg of Object.values(command.args ?? {})) lines.push('.TP', `.I ${roff(arg.name.toUpperCase())}`, roff(arg.description ?? ''))
    const flags = Object.values(command.flags ?? {}).filter((f) => !f.hidden)
    for (const flag of flags.filter((f) => f.helpGroup !== 'GLOBAL')) lines.push(...flagLines(flag))
    const examples = (command.examples ?? []).map((e) => (typeof e === 'string' ? e : e.command)).map((e) => e.replaceAll('<%= config.bin %>', bin))
    if (examples.length) lines.push('.PP', 'Examples:', '.RS', '.nf', ...examples.map(roff), '.fi', '.RE')
  }
  const global = new Map()
  for (const command of commands) for (const flag of Object.values(command.flags ?? {})) if (flag.helpGroup === 'GLOBAL' && !flag.hidden) global.set(flag.name, flag)
  lines.push('.SH GLOBAL FLAGS', roff('Every command but resolve takes these.'))
  for (const flag of global.values()) lines.push(...flagLines(flag))
  lines.push('.SH EXIT STATUS')
  for (const [code, meaning] of EXIT_CODES) lines.push('.TP', `.B ${code}`, roff(meaning))
  lines.push('.SH FILES')
  for (const [file, meaning] of FILES) lines.push('.TP', `.I ${roff(file)}`, roff(meaning))
  lines.push('.SH ENVIRONMENT')
  for (const [name, meaning] of ENVIRONMENT) lines.push('.TP', `.B ${roff(name)}`, roff(meaning))
  lines.push('.SH SEE ALSO', '.BR podman\\-run (1),', '.BR oci\\-hooks (5),', '.BR containers\\-storage.conf (5),', '.BR skopeo (1)', '')
  return lines.join('\n')
}

/** `YYYY-MM-DD` of SOURCE_DATE_EPOCH, else today. */
export function pageDate(env = process.env) {
  const epoch = Number(env.SOURCE_DATE_EPOCH)
  return (Number.isFinite(epoch) && env.SOURCE_DATE_EPOCH ? new Date(epoch * 1000) : new Date()).toISOString().slice(0, 10)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const top = join(dirname(fileURLToPath(import.meta.url)), '..')
  const [manifestPath = join(top, 'oclif.manifest.json'), output] = process.argv.slice(2)
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'))
  const pkg = JSON.parse(await readFile(join(top, 'package.json'), 'utf8'))
  const page = manPage(manifest, pkg, pageDate())
  if (output) await writeFile(output, page)
  else process.stdout.write(page)
}

/**
 * What a flat root holds for apptainer (src/layout/singularity.ts): the image's Env as a
 * shell script, the runscript, labels. The scripts are run here by the real shells a
 * container may have (dash, bash, busybox ash); test/e2e/apptainer.test.ts runs them with
 * the real apptainer, whose own shell interpreter sources the env scripts.
 */
import {lstat, mkdir, readFile, readlink, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {parseSingularityEnv} from '../../src/hook/image-config.js'
import {addSingularityFiles, envScript, parseEnvScript, runscript} from '../../src/layout/singularity.js'
import {NASTY_ENV} from '../helpers/apptainer.js'
import {exec} from '../helpers/exec.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

/** The shells a container may source the scripts with: Debian's /bin/sh, bash, busybox's ash. */
const SHELLS: [string, string[]][] = [
  ['dash', ['dash']],
  ['bash', ['bash', '--norc', '--noprofile']],
  ['busybox ash', ['busybox', 'sh']],
]

const NASTY = NASTY_ENV

const top = useTempDir('cvmfs-oci-singularity-', 'all')
let counter = 0
beforeAll(async () => {
  requireTools('dash', 'bash', 'busybox')
})

async function scriptFile(text: string): Promise<string> {
  const path = join(top(), `script${counter++}.sh`)
  await writeFile(path, text)
  return path
}

/** Source `script` in a clean environment (plus `env`) with `shell` and print NAME's value exactly (or `<unset>`). */
async function sourced(shell: string[], script: string, name: string, env: Record<string, string> = {}): Promise<string> {
  const print = `. "$1"; if [ -n "\${${name}+set}" ]; then printf %s "$${name}"; else printf '<unset>'; fi`
  const result = await exec('env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...shell, '-c', print, 'sh', script])
  expect(result.stderr).toBe('')
  return result.stdout
}

/** Whether NAME is exported after sourcing (a child process sees it). */
async function exported(shell: string[], script: string, name: string): Promise<boolean> {
  const result = await exec('env', ['-i', ...shell, '-c', `. "$1"; env`, 'sh', script])
  return result.stdout.split('\n').some((line) => line.startsWith(`${name}=`))
}

describe('envScript', () => {
  const env = [...Object.entries(NASTY).map(([k, v]) => `${k}=${v}`), 'PATH=/opt/bin:/bin']

  it.each(SHELLS)('gives every value byte for byte in %s, exported', async (_, shell) => {
    const script = await scriptFile(envScript(env))
    for (const [name, value] of Object.entries(NASTY)) expect(await sourced(shell, script, name), name).toBe(value)
    expect(await sourced(shell, script, 'PATH')).toBe('/opt/bin:/bin')
    expect(await exported(shell, script, 'QUOTES')).toBe(true)
    expect(await exported(shell, script, 'PATH')).toBe(true)
  })

  it.each(SHELLS)('lets a value already set win, except PATH, as apptainer does for its own images (%s)', async (_, shell) => {
    const script = await scriptFile(envScript(['HOME=/image/home', 'FOO=image', 'PATH=/image/bin']))
    expect(await sourced(shell, script, 'HOME', {HOME: '/home/alice'})).toBe('/home/alice')
    expect(await sourced(shell, script, 'FOO', {FOO: ''})).toBe('image')
    expect(await sourced(shell, script, 'PATH', {PATH: '/usr/bin:/bin'})).toBe('/image/bin')
  })

  it.each(SHELLS)('leaves out what no shell can hold, and keeps going (%s)', async (_, shell) => {
    // Not a shell name (docker allows them; `export a.b=1` would stop the script there), no `=`, a NUL byte.
    const script = await scriptFile(envScript(['BEFORE=1', 'discovery.type=single-node', '1ABC=x', 'A-B=y', 'NOEQUALS', 'NUL=a\0b', 'AFTER=2']))
    expect(await sourced(shell, script, 'BEFORE')).toBe('1')
    expect(await sourced(shell, script, 'AFTER')).toBe('2')
    expect(await sourced(shell, script, 'NUL')).toBe('<unset>')
    expect(await sourced(shell, script, 'NOEQUALS')).toBe('<unset>')
  })

  it('takes the last value of a repeated name', async () => {
    const script = await scriptFile(envScript(['A=1', 'B=x', 'A=2']))
    expect(await sourced(['dash'], script, 'A')).toBe('2')
    expect(parseEnvScript(envScript(['A=1', 'B=x', 'A=2']))).toEqual(['A=2', 'B=x'])
  })

  it('is read back exactly by the parser the hook uses for roots without a config', () => {
    expect(parseEnvScript(envScript(env))).toEqual(env)
    expect(parseSingularityEnv(envScript(env))).toEqual(env)
    expect(parseEnvScript(envScript([]))).toEqual([])
    expect(parseEnvScript(envScript(null))).toEqual([])
  })
})

describe("parseEnvScript on DUCC's and apptainer's scripts", () => {
  // Lines as DUCC 2.12 (cvmfs_ducc convert-single-image) and apptainer 1.4.5 (`build --sandbox
  // … oci:`) wrote them, both the same, for Env FOO=bar, Q=a "b" $c d, PATH=/bin and
  // N=bs=\ bt=` dol=$HOME dq=" sq=' nl=<newline>x brace=} uni=é€: Go's %q of the value
  // with `\`, `"`, `` ` `` and `$` escaped by a backslash.
  const written = [
    '#!/bin/sh',
    'export FOO="${FOO:-"bar"}"',
    'export Q="${Q:-"a \\\\\\"b\\\\\\" \\\\$c d"}"',
    'export PATH="/bin"',
    'export N="${N:-"bs=\\\\\\\\ bt=\\\\` dol=\\\\$HOME dq=\\\\\\" sq=\' nl=\\nx brace=} uni=é€"}"',
    'export EMPTY="${EMPTY:-""}"',
    '',
  ].join('\n')

  it('decodes them to the image config Env', () => {
    expect(parseEnvScript(written)).toEqual(['FOO=bar', 'Q=a "b" $c d', 'PATH=/bin', 'N=bs=\\ bt=` dol=$HOME dq=" sq=\' nl=\nx brace=} uni=é€', 'EMPTY='])
  })

  it("decodes Go's escapes, and skips a line it cannot read", () => {
    expect(parseEnvScript('export V="${V:-"a\\tb\\x41\\u00e9\\U0001F600\\101"}"\nexport W="${W:-"\\U00110000"}"\nexport X="1"\n')).toEqual(['V=a\tbAé😀A', 'X=1'])
  })

  it('reads older hand-written forms too', () => {
    expect(parseEnvScript('#!/bin/sh\nexport PATH="/usr/bin:/bin"\nexport X=\'a b\'\nexport Q="say \\"hi\\""\n')).toEqual(['PATH=/usr/bin:/bin', 'X=a b', 'Q=say "hi"'])
  })
})

describe('runscript', () => {
  /** Run the runscript with `shell`, as apptainer does (`runscript ARGS…`). */
  async function run(shell: string[], entrypoint: string[] | null, cmd: string[] | null, args: string[], input?: string): Promise<string> {
    const script = await scriptFile(runscript(entrypoint, cmd))
    const result = await exec(shell[0]!, [...shell.slice(1), script, ...args], {input, env: {PATH: process.env.PATH ?? '/usr/bin:/bin'}})
    expect(result.stderr).toBe('')
    return result.stdout
  }
  const show = ['printf', '<%s>\\n']
  const nasty = Object.values(NASTY)

  it.each(SHELLS)('runs Entrypoint + Cmd, or Entrypoint + the arguments, each word exact (%s)', async (_, shell) => {
    const lines = (words: string[]) => words.map((w) => `<${w}>\n`).join('')
    expect(await run(shell, show, nasty, [])).toBe(lines(nasty))
    expect(await run(shell, show, ['cmd'], nasty)).toBe(lines(nasty))
    expect(await run(shell, show, ['cmd'], ['-n', '--', '-c'])).toBe(lines(['-n', '--', '-c']))
    // Entrypoint only: the arguments follow it.
    expect(await run(shell, show, null, [])).toBe('<>\n')
    expect(await run(shell, show, [], ['x y'])).toBe(lines(['x y']))
    // Cmd only: the arguments replace it.
    expect(await run(shell, null, [...show, 'cmd'], [])).toBe(lines(['cmd']))
    expect(await run(shell, null, ['false'], [...show, 'a  b', '$HOME'])).toBe(lines(['a  b', '$HOME']))
    // Entrypoint words are exact too.
    expect(await run(shell, ['printf', '[%s]', '$x "y"'], null, [])).toBe('[$x "y"]')
  })

  it('runs the arguments when the image names no command, else /bin/sh as apptainer does without a runscript', async () => {
    expect(await run(['dash'], null, null, [...show, 'a'])).toBe('<a>\n')
    expect(await run(['dash'], null, null, [], 'echo from the shell\n')).toBe('from the shell\n')
  })

  it('has the line that makes apptainer run it with its own shell (images without /bin/sh)', () => {
    // apptainer 1.4 (its action code, getDockerRunscript) looks for this exact line; seen working in test/e2e/apptainer.test.ts.
    expect(runscript(['/app'], null).split('\n')).toContain('eval "set ${SINGULARITY_OCI_RUN}"')
  })
})

describe('addSingularityFiles', () => {
  const config = {Env: ['FOO=bar'], Entrypoint: ['/bin/echo'], Cmd: ['hello'], Labels: {'org.example.a': 'x "y"'}}
  const ours = [
    '.singularity.d',
    '.singularity.d/env',
    '.singularity.d/env/10-docker2singularity.sh',
    '.singularity.d/env/99-base.sh',
    '.singularity.d/libs',
    '.singularity.d/runscript',
    '.singularity.d/labels.json',
  ]

  it('writes the env scripts, an executable runscript, the labels and libs/ into a root without them', async () => {
    const root = join(top(), `root${counter++}`)
    await mkdir(root)
    expect(await addSingularityFiles(root, config)).toEqual(ours)
    expect(await readFile(join(root, '.singularity.d/env/10-docker2singularity.sh'), 'utf8')).toBe(envScript(config.Env))
    expect(await readFile(join(root, '.singularity.d/runscript'), 'utf8')).toBe(runscript(config.Entrypoint, config.Cmd))
    expect((await lstat(join(root, '.singularity.d/runscript'))).mode & 0o7777).toBe(0o755)
    expect(JSON.parse(await readFile(join(root, '.singularity.d/labels.json'), 'utf8'))).toEqual(config.Labels)
    expect((await lstat(join(root, '.singularity.d/libs'))).isDirectory()).toBe(true)
    // A second time: nothing is missing.
    expect(await addSingularityFiles(root, config)).toEqual([])
  })

  it("keeps the image's own files and adds only what is missing", async () => {
    const root = join(top(), `root${counter++}`)
    await mkdir(join(root, '.singularity.d/env'), {recursive: true})
    await writeFile(join(root, '.singularity.d/runscript'), '#!/bin/sh\necho mine\n', {mode: 0o755})
    await writeFile(join(root, '.singularity.d/env/10-docker2singularity.sh'), 'export MINE=1\n')
    expect(await addSingularityFiles(root, config)).toEqual(['.singularity.d/env/99-base.sh', '.singularity.d/libs', '.singularity.d/labels.json'])
    expect(await readFile(join(root, '.singularity.d/runscript'), 'utf8')).toBe('#!/bin/sh\necho mine\n')
    expect(await readFile(join(root, '.singularity.d/env/10-docker2singularity.sh'), 'utf8')).toBe('export MINE=1\n')
  })

  it('writes nothing through a symlink or below a file the image put there', async () => {
    const linked = join(top(), `root${counter++}`)
    await mkdir(join(linked, 'elsewhere'), {recursive: true})
    await symlink('elsewhere', join(linked, '.singularity.d'))
    expect(await addSingularityFiles(linked, config)).toEqual([])
    expect(await readlink(join(linked, '.singularity.d'))).toBe('elsewhere')
    const file = join(top(), `root${counter++}`)
    await mkdir(file)
    await writeFile(join(file, '.singularity.d'), 'not a directory')
    expect(await addSingularityFiles(file, config)).toEqual([])
  })

  it('writes labels.json as an empty object for an image without labels', async () => {
    const root = join(top(), `root${counter++}`)
    await mkdir(root)
    await addSingularityFiles(root, {})
    expect(JSON.parse(await readFile(join(root, '.singularity.d/labels.json'), 'utf8'))).toEqual({})
  })
})

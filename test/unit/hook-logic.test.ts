import {createHash} from 'node:crypto'
import {mkdir, mkdtemp, readdir, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {applyImageConfig, type RuntimeSpec} from '../../src/hook/apply.js'
import {findFlatRoot, flatRootOf, overlayLowerDirs} from '../../src/hook/flat-root.js'
import {checkHookContent, podmanVerdict} from '../../src/hook/hook-file.js'
import {parseSingularityEnv} from '../../src/hook/image-config.js'
import {ENV_SCRIPT, envScript} from '../../src/layout/singularity.js'
import {writeHookFile} from '../../src/hook/install.js'
import {filterConfig} from '../../src/hook/main.js'
import {re2Problem} from '../../src/hook/re2.js'
import {resolveUser} from '../../src/hook/users.js'
import {useTempDir} from '../helpers/temp-dir.js'

const HEX = 'ab'.padEnd(64, 'c')
const PODMAN_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

describe('recognising a flat root', () => {
  it.each([
    [`/cvmfs/unpacked.cern.ch/.flat/ab/${HEX}`, {repository: '/cvmfs/unpacked.cern.ch', configHex: HEX}],
    [`/srv/repo/.flat/ab/${HEX}/`, {repository: '/srv/repo', configHex: HEX}],
    [`/.flat/ab/${HEX}`, {repository: '/', configHex: HEX}],
    [`/srv/repo/.flat/cd/${HEX}`, undefined],
    [`/srv/repo/.flat/ab/${HEX}/etc`, undefined],
    [`/srv/repo/flat/ab/${HEX}`, undefined],
    ['/var/lib/containers/storage/overlay/x/merged', undefined],
  ])('%s', (path, expected) => {
    const found = flatRootOf(path)
    if (expected === undefined) expect(found).toBeUndefined()
    else expect(found).toMatchObject(expected)
  })

  it('finds the lower directory of a :O overlay in mountinfo, with escapes', () => {
    const merge = '/run/containers/storage/overlay-containers/1234/rootfs/merge'
    const lower = `/cvmfs/my repo/.flat/ab/${HEX}`
    const mountinfo = [
      '22 1 0:21 / / rw,relatime - ext4 /dev/vda rw',
      `48 27 0:40 / ${merge} rw,nodev,relatime - overlay overlay rw,lowerdir=${lower.replace(' ', '\\040')},upperdir=/run/u,workdir=/run/w,uuid=on`,
    ].join('\n')
    expect(overlayLowerDirs(mountinfo, merge)).toEqual([lower])
    expect(findFlatRoot(merge, () => mountinfo)?.configHex).toBe(HEX)
    expect(findFlatRoot('/some/other/merge', () => mountinfo)).toBeUndefined()
    // A plain root never reads mountinfo.
    expect(findFlatRoot('/srv/rootfs', () => { throw new Error('read') })).toBeUndefined()
  })
})

function spec(overrides: Partial<NonNullable<RuntimeSpec['process']>> = {}): RuntimeSpec {
  return {root: {path: '/x'}, process: {env: [PODMAN_PATH, 'TERM=xterm', 'HOME=/root', 'HOSTNAME=abc'], cwd: '/', user: {uid: 0, gid: 0, umask: 18}, ...overrides}}
}
const users = (passwd: string, group = '') => (user: string) => resolveUser(user, passwd, group)
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n'
const GROUP = 'root:x:0:\napp:x:1000:\nvideo:x:44:app\n'

describe('merging the image config', () => {
  it("replaces podman's defaults, keeps what the user set, adds the rest", () => {
    const s = spec({env: [PODMAN_PATH, 'TERM=xterm', 'FOO=user', 'HOME=/root']})
    const changed = applyImageConfig(s, {Env: ['PATH=/opt/bin:/bin', 'FOO=image', 'BAR=image']}, users(''))
    expect(s.process!.env).toEqual(['PATH=/opt/bin:/bin', 'TERM=xterm', 'FOO=user', 'HOME=/root', 'BAR=image'])
    expect(changed).toEqual(['env PATH', 'env BAR'])
  })

  it('keeps a PATH the user set', () => {
    const s = spec({env: ['PATH=/mine', 'HOME=/root']})
    applyImageConfig(s, {Env: ['PATH=/image']}, users(''))
    expect(s.process!.env).toContain('PATH=/mine')
  })

  it("sets WorkingDir only over podman's default /", () => {
    const a = spec()
    applyImageConfig(a, {WorkingDir: '/work'}, users(''))
    expect(a.process!.cwd).toBe('/work')
    const b = spec({cwd: '/tmp'})
    applyImageConfig(b, {WorkingDir: '/work'}, users(''))
    expect(b.process!.cwd).toBe('/tmp')
  })

  it.each([
    ['1000', {uid: 1000, gid: 1000, additionalGids: [44]}, 'HOME=/home/app'],
    ['app', {uid: 1000, gid: 1000, additionalGids: [44]}, 'HOME=/home/app'],
    ['app:video', {uid: 1000, gid: 44}, 'HOME=/home/app'],
    ['4242', {uid: 4242, gid: 0}, 'HOME=/'],
    ['4242:7', {uid: 4242, gid: 7}, 'HOME=/'],
  ])('User %s when no --user was given', (user, expected, home) => {
    const s = spec()
    applyImageConfig(s, {User: user}, users(PASSWD, GROUP))
    expect(s.process!.user).toMatchObject({...expected, umask: 18})
    expect(s.process!.env).toContain(home)
  })

  it('leaves an explicit --user alone (podman adds additionalGids for it)', () => {
    const s = spec({user: {uid: 0, gid: 0, umask: 18, additionalGids: [0]}})
    expect(applyImageConfig(s, {User: '1000'}, users(PASSWD))).toEqual([])
    expect(s.process!.user!.uid).toBe(0)
  })

  it('refuses a user name the image does not list', () => {
    expect(() => applyImageConfig(spec(), {User: 'ghost'}, users(PASSWD))).toThrow(/ghost/)
  })
})

describe('the hook filter', () => {
  const repo = useTempDir('cvmfs-oci-hookf-', 'all')

  async function publishedRoot(config: object, where: 'ours' | 'store' = 'ours'): Promise<string> {
    const bytes = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}, config}))
    const hex = createHash('sha256').update(bytes).digest('hex')
    const root = join(repo(), '.flat', hex.slice(0, 2), hex)
    await mkdir(join(root, 'etc'), {recursive: true})
    if (where === 'ours') {
      await mkdir(join(repo(), '.metadata/.blobs/sha256'), {recursive: true})
      await writeFile(join(repo(), '.metadata/.blobs/sha256', hex), bytes)
    } else {
      const dir = join(repo(), 'podmanStore/overlay-images', hex)
      await mkdir(dir, {recursive: true})
      await writeFile(join(dir, `=${Buffer.from(`sha256:${hex}`).toString('base64')}`), bytes)
    }
    return root
  }

  it('passes a container it does not own through byte for byte', () => {
    const input = Buffer.from('{"ociVersion":"1.0.2",  "process":{"env":["A=1"],"cwd":"/"},"root":{"path":"/var/lib/x/merged"}}\n')
    const out = filterConfig(input, () => '')
    expect(out.output).toBe(input)
    expect(out.warnings).toEqual([])
    expect(filterConfig(Buffer.from('not json'), () => '').output.toString()).toBe('not json')
  })

  it("applies our config, or DUCC's from its podman store", async () => {
    for (const where of ['ours', 'store'] as const) {
      const root = await publishedRoot({Env: ['FOO=bar'], WorkingDir: '/work'}, where)
      const input = Buffer.from(JSON.stringify(spec()).replace('"/x"', JSON.stringify(root)))
      const out = filterConfig(input, () => '')
      const result = JSON.parse(out.output.toString())
      expect(result.process.env, where).toContain('FOO=bar')
      expect(result.process.cwd).toBe('/work')
    }
  })

  it('warns and changes nothing when the config is missing or does not match its digest', async () => {
    const hex = 'ef'.padEnd(64, '0')
    const root = join(repo(), '.flat/ef', hex)
    await mkdir(root, {recursive: true})
    const input = Buffer.from(JSON.stringify(spec()).replace('"/x"', JSON.stringify(root)))
    const missing = filterConfig(input, () => '')
    expect(missing.output).toBe(input)
    expect(missing.warnings[0]).toContain('no image config')
    await mkdir(join(repo(), '.metadata/.blobs/sha256'), {recursive: true})
    await writeFile(join(repo(), '.metadata/.blobs/sha256', hex), '{"config":{"Env":["EVIL=1"]}}')
    const tampered = filterConfig(input, () => '')
    expect(tampered.output).toBe(input)
    expect(tampered.warnings[0]).toContain('does not match its digest')
  })

  it("applies the Env of the root's apptainer env script where the repository holds no config (ours or DUCC's form)", async () => {
    const env = ['PATH=/opt/bin:/bin', 'Q=a "b" $c d', "S=it's"]
    const scripts = {
      ours: envScript(env),
      // As DUCC 2.12 writes it (see test/unit/singularity.test.ts).
      ducc: '#!/bin/sh\nexport PATH="/opt/bin:/bin"\nexport Q="${Q:-"a \\\\\\"b\\\\\\" \\\\$c d"}"\nexport S="${S:-"it\'s"}"\n',
    }
    for (const [form, script] of Object.entries(scripts)) {
      const hex = createHash('sha256').update(form).digest('hex')
      const root = join(repo(), '.flat', hex.slice(0, 2), hex)
      await mkdir(join(root, '.singularity.d/env'), {recursive: true})
      await writeFile(join(root, ENV_SCRIPT), script)
      const out = filterConfig(Buffer.from(JSON.stringify(spec()).replace('"/x"', JSON.stringify(root))), () => '')
      expect(out.warnings, form).toEqual([])
      expect(JSON.parse(out.output.toString()).process.env, form).toEqual(expect.arrayContaining(env))
    }
  })

  it("reads DUCC's apptainer env script", () => {
    expect(parseSingularityEnv('#!/bin/sh\nexport PATH="/usr/bin:/bin"\nexport X=\'a b\'\nexport Q="say \\"hi\\""\n')).toEqual([
      'PATH=/usr/bin:/bin',
      'X=a b',
      'Q=say "hi"',
    ])
  })
})

describe('RE2 regexes', () => {
  it.each([
    ['.*/init$', undefined],
    ['^com\\.example\\.department$', undefined],
    ['(?i)fluid', undefined],
    ['(?P<name>x)', undefined],
    ['[[:alpha:]]+', undefined],
    ['\\Astart\\z', undefined],
    ['foo(?=bar)', 'lookahead'],
    ['(a)\\1', 'backreference'],
    ['([a-z]', 'Unterminated group'],
    ['*x', 'Nothing to repeat'],
  ])('%s', (pattern, problem) => {
    if (problem === undefined) expect(re2Problem(pattern)).toBeUndefined()
    else expect(re2Problem(pattern)).toContain(problem)
  })
})

describe('hook files as podman reads them', () => {
  const good = {version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}, stages: ['precreate']}
  const check = (value: unknown) => checkHookContent(typeof value === 'string' ? value : JSON.stringify(value))

  it('accepts a good file', async () => {
    expect(await check(good)).toEqual([])
  })

  it.each([
    ['a bad regex', {...good, when: {commands: ['(unclosed']}}, 'bad-regex', 'refuses', 'invalid regex'],
    ['an unknown stage', {...good, stages: ['prestrat']}, 'unknown-stage', 'refuses', 'unknown stage "prestrat"'],
    ['a missing version', {hook: {path: '/bin/true'}, when: {always: true}, stages: ['prestart']}, 'legacy-invalid', 'refuses', 'missing "version"'],
    ['a legacy file', {hook: '/bin/true', stage: ['prestart']}, 'legacy', 'runs', 'legacy 0.1.0'],
    ['an empty when', {...good, when: {}}, 'never-matches', 'skips', 'never runs'],
    ['no when', {version: '1.0.0', hook: {path: '/bin/true'}, stages: ['precreate']}, 'never-matches', 'skips', 'no "when"'],
    ['always false', {...good, when: {always: false}}, 'never-matches', 'skips', '"always" is false'],
    ['hasBindMounts false', {...good, when: {hasBindMounts: false}}, 'never-matches', 'skips', '"hasBindMounts" is false'],
    ['a when of unknown keys only', {...good, when: {annotation: {a: 'b'}}}, 'never-matches', 'skips', 'no condition podman knows'],
    ['no stage', {...good, stages: []}, 'no-stages', 'skips', 'no stage'],
    ['no stages property', {version: '1.0.0', hook: {path: '/bin/true'}, when: {always: true}}, 'missing-property', 'refuses', 'stages'],
    ['no hook.path', {...good, hook: {args: ['x']}}, 'missing-property', 'refuses', 'hook.path'],
    ['an empty hook.path', {...good, hook: {path: ''}}, 'missing-property', 'refuses', 'hook.path'],
    ['a relative path', {...good, hook: {path: 'bin/true'}}, 'relative-path', 'skips', 'relative'],
    ['bad JSON', '{"version": "1.0.0",', 'not-json', 'refuses', 'not valid JSON'],
    ['an array', '[]', 'not-object', 'refuses', 'not a JSON object'],
    ['a missing program', {...good, hook: {path: '/nonexistent/hook'}}, 'missing-program', 'skips', 'skips this hook'],
    ['a path through a file', {...good, hook: {path: '/etc/passwd/x'}}, 'bad-path', 'refuses', 'ENOTDIR'],
    ['a directory as program', {...good, hook: {path: '/'}}, 'not-executable', 'refuses', 'not a file'],
    ['a program without x bits', {...good, hook: {path: '/etc/passwd'}}, 'not-executable', 'refuses', 'not executable (mode 644)'],
    ['a zero timeout', {...good, hook: {path: '/bin/true', timeout: 0}}, 'bad-timeout', 'refuses', 'kills the hook at once'],
    ['an env entry without =', {...good, hook: {path: '/bin/true', env: ['FOO']}}, 'env-entry', 'runs', 'not NAME=VALUE'],
    ['an unknown property', {...good, extra: 1}, 'unknown-property', 'runs', '"extra" is ignored'],
    ['a value of the wrong type', {...good, when: {always: 'yes'}}, 'wrong-type', 'refuses', 'must be boolean'],
    ['an unknown version', {...good, version: '2.0.0'}, 'unknown-version', 'refuses', 'unrecognized hook version'],
  ])('flags %s', async (_what, file, kind, podman, message) => {
    const problems = await check(file)
    expect(problems).toContainEqual({kind, podman, severity: podman === 'refuses' ? 'error' : 'warning', message: expect.stringContaining(message)})
  })

  it('reads keys ignoring case, and null, as podman\'s Go decoder does', async () => {
    // "When", "PATH", "Stages" are when, path and stages; a null list is no list, a null string no change.
    expect(await check({Version: '1.0.0', hook: {PATH: '/bin/true'}, When: {ALWAYS: true}, Stages: ['precreate']})).toEqual([])
    expect(await check({...good, when: {always: true}, When: {}})).toEqual([])
    expect(await check({...good, stages: null})).toContainEqual(expect.objectContaining({kind: 'missing-property', podman: 'refuses'}))
    expect(await check({...good, when: {always: null, commands: ['.*']}})).toEqual([])
    expect(await check({...good, stages: ['precreate', null]})).toContainEqual(expect.objectContaining({kind: 'unknown-stage', message: expect.stringContaining('""')}))
  })

  it('calls a problem podman never gets to, while it skips the hook, a warning', async () => {
    // podman drops a file whose hook.path is missing before it checks regexes and stages …
    const dropped = await check({...good, hook: {path: '/nonexistent/hook'}, stages: ['prestrat']})
    expect(dropped).toContainEqual(expect.objectContaining({kind: 'unknown-stage', severity: 'warning', podman: 'skips'}))
    expect(podmanVerdict(dropped)).toBe('skips')
    // … and a hook that never matches never runs, so its program cannot fail; but its stages still count.
    const idle = await check({...good, hook: {path: '/etc/passwd'}, when: {always: false}})
    expect(idle).toContainEqual(expect.objectContaining({kind: 'not-executable', severity: 'warning', podman: 'skips'}))
    expect(podmanVerdict(await check({...good, when: {}, stages: ['prestrat']}))).toBe('refuses')
    // A wrong type stops podman before it looks for the program.
    expect(podmanVerdict(await check({...good, hook: {path: '/nonexistent/hook'}, when: {always: 'x'}}))).toBe('refuses')
  })

  it('install refuses to write a file podman would reject', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cvmfs-oci-hooks-'))
    try {
      await expect(writeHookFile(dir, JSON.stringify({...good, stages: ['bogus']}))).rejects.toMatchObject({code: 'E_BAD_HOOK_FILE'})
      expect(await readdir(dir)).toEqual([])
    } finally {
      await rm(dir, {recursive: true, force: true})
    }
  })
})

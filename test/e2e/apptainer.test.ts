/**
 * apptainer users of a repository cvmfs-oci publishes: `apptainer exec|run
 * <repository>/<registry>/<image>:<tag> …` with the real apptainer 1.4.5 of the kit
 * (../shared/testbed), as root and as an unprivileged user, on a read-only view of a
 * published directory and through a plain CVMFS client mount of a real repository.
 * The image's Env (every byte), `--env` over it, the runscript (Entrypoint and Cmd as
 * `docker run` runs them), labels, and the mount points apptainer needs when it may not
 * create them. The oracle: apptainer's own conversion of the same image (`apptainer
 * build --sandbox OUT oci:LAYOUT`) gives the same output where it is right.
 */
import {chmod, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {parseSingularityEnv} from '../../src/hook/image-config.js'
import {ENV_SCRIPT, envScript} from '../../src/layout/singularity.js'
import {apptainer, apptainerSandbox, NASTY_ENV, requireApptainer, type ApptainerUser} from '../helpers/apptainer.js'
import {busyboxLayer} from '../helpers/busybox.js'
import {cliOk} from '../helpers/cli.js'
import {writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {readonlyBindMount, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {duccConvert, testRepository} from '../helpers/cvmfs.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The test images, each its own OCI layout (apptainer's `oci:` source takes one image). */
const IMAGES: Record<string, ImageSpec> = {
  // Cmd only, an Env value everybody gets right, labels.
  plain: {
    layers: [{entries: busyboxLayer()}],
    config: {Env: [PATH, 'FOO=bar', 'HOME=/image/home'], Cmd: ['sh', '-c', 'echo "cmd: $FOO"'], Labels: {'org.example.team': 'cvmfs "oci"', 'org.example.n': '1'}},
  },
  // Values that break naive quoting (apptainer's own conversion loses the whole Env on them).
  nasty: {
    layers: [{entries: busyboxLayer()}],
    config: {Env: [PATH, ...Object.entries(NASTY_ENV).map(([k, v]) => `${k}=${v}`)], Cmd: ['sh']},
  },
  ep: {layers: [{entries: busyboxLayer()}], config: {Env: [PATH], Entrypoint: ['/bin/echo', 'ep:']}},
  epcmd: {layers: [{entries: busyboxLayer()}], config: {Env: [PATH], Entrypoint: ['/bin/echo'], Cmd: ['hello', 'world']}},
  // No /bin/sh at all: only apptainer's own shell can read the runscript.
  nosh: {
    layers: [{entries: [{name: 'bin/', type: 'directory'}, ...busyboxLayer().filter((e) => e.name === 'bin/busybox')]}],
    config: {Env: ['PATH=/bin'], Entrypoint: ['/bin/busybox', 'echo', "it's"], Cmd: ['no shell needed']},
  },
}
type ImageName = keyof typeof IMAGES

/** What DUCC converts: `plain` with one more label. */
const DUCC_IMAGE: ImageSpec = {...IMAGES.plain!, config: {...IMAGES.plain!.config, Labels: {'org.example.by': 'ducc'}}}

/** A shell command printing each named variable followed by a NUL byte (`<unset>` when unset). */
function printVars(names: string[]): string {
  return names.map((n) => `if [ -n "\${${n}+set}" ]; then printf '%s\\0' "$${n}"; else printf '<unset>\\0'; fi`).join('; ')
}

/** What `apptainer … printVars(NASTY_ENV)` must print. */
const NASTY_OUTPUT = Object.values(NASTY_ENV).map((v) => `${v}\0`).join('')

/** Each case: the command, and what it prints (stdout). */
const CASES: {title: string; image: ImageName; action: 'exec' | 'run'; args?: string[]; options?: string[]; env?: Record<string, string>; stdout: string}[] = [
  {title: 'exec sees Env', image: 'plain', action: 'exec', args: ['sh', '-c', 'echo "$FOO"'], stdout: 'bar\n'},
  {title: '--env wins over Env', image: 'plain', action: 'exec', options: ['--env', 'FOO=cli'], args: ['sh', '-c', 'echo "$FOO"'], stdout: 'cli\n'},
  {title: 'APPTAINERENV_ wins over Env', image: 'plain', action: 'exec', env: {APPTAINERENV_FOO: 'from-env'}, args: ['sh', '-c', 'echo "$FOO"'], stdout: 'from-env\n'},
  {title: 'run runs Cmd', image: 'plain', action: 'run', stdout: 'cmd: bar\n'},
  {title: 'run ARGS replaces Cmd', image: 'plain', action: 'run', args: ['echo', 'a', 'b  c'], stdout: 'a b  c\n'},
  {title: 'run of an Entrypoint-only image', image: 'ep', action: 'run', stdout: 'ep:\n'},
  {title: 'run ARGS follows Entrypoint', image: 'ep', action: 'run', args: ['x', 'y  z'], stdout: 'ep: x y  z\n'},
  {title: 'run of an Entrypoint+Cmd image', image: 'epcmd', action: 'run', stdout: 'hello world\n'},
  {title: 'run ARGS replaces Cmd after Entrypoint', image: 'epcmd', action: 'run', args: ['bye'], stdout: 'bye\n'},
  {title: 'run of an image without /bin/sh', image: 'nosh', action: 'run', stdout: "it's no shell needed\n"},
  {title: 'run ARGS, exact with --no-eval', image: 'ep', action: 'run', options: ['--no-eval'], args: ['$HOME', 'q"r', "it's"], stdout: `ep: $HOME q"r it's\n`},
]

/** Cases our roots get right and apptainer's own conversion does not (its runscript evaluates ARGS in a shell). */
const OURS_ONLY: typeof CASES = [
  {title: 'an Env value with quotes, $, backslashes, newlines … arrives intact', image: 'nasty', action: 'exec', args: ['sh', '-c', printVars(Object.keys(NASTY_ENV))], stdout: NASTY_OUTPUT},
  {title: 'run ARGS are passed exactly, as docker run passes them', image: 'ep', action: 'run', args: ['$HOME', 'q"r', "it's", '`id`'], stdout: 'ep: $HOME q"r it\'s `id`\n'},
  {title: "run ARGS are passed exactly by apptainer's own shell (no /bin/sh)", image: 'nosh', action: 'run', args: ['$HOME', 'q"r', "a'b", 'x\\y'], stdout: `it's $HOME q"r a'b x\\y\n`},
]

const work = useTempDir('cvmfs-oci-apptainer-', 'all')
let registry: string
const layouts: Record<string, string> = {}
const refs: Record<string, string> = {}

beforeAll(async () => {
  requireTools('skopeo', 'busybox', 'runuser', 'mount', 'umount')
  requireApptainer()
  // apptainer as `nobody` reads below it (the client mount, the sandboxes).
  await chmod(work(), 0o755)
  registry = registryAddress()
  for (const [name, image] of Object.entries(IMAGES) as [ImageName, ImageSpec][]) {
    layouts[name] = join(work(), `layout-${name}`)
    await writeOciLayout(layouts[name]!, [{tag: 't', image}])
    refs[name] = await pushLayout(layouts[name]!, 't', registry, `apptainer-e2e/${name}:1`)
  }
}, 300_000)

/** Run one case on `root` as `user`; the output on failure names everything. */
async function runCase(c: (typeof CASES)[number], root: string, user: ApptainerUser) {
  const result = await apptainer(c.action, root, c.args ?? [], {user, options: c.options, env: c.env})
  return {exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr}
}

describe('apptainer on a read-only view of a published directory', () => {
  let ro: ReadonlyMount
  const sandboxes: Partial<Record<ImageName, string>> = {}
  const root = (name: ImageName) => join(ro.path, `${refs[name]!}`)

  beforeAll(async () => {
    const repo = join(work(), 'repo')
    await cliOk(['publish', '--root', repo, '--tls-verify=false', ...Object.values(refs)])
    ro = await readonlyBindMount(repo)
    for (const name of Object.keys(IMAGES) as ImageName[]) {
      sandboxes[name] = join(work(), `sandbox-${name}`)
      await apptainerSandbox(layouts[name]!, sandboxes[name]!, work())
    }
  }, 300_000)
  afterAll(async () => {
    await ro?.unmount()
  })

  describe.each(['root', 'nobody'] as ApptainerUser[])('as %s', (user) => {
    it.each([...CASES, ...OURS_ONLY])('$title', async (c) => {
      expect(await runCase(c, root(c.image), user)).toEqual({exitCode: 0, stdout: c.stdout, stderr: ''})
    })

    it("keeps the HOME apptainer chose (the image's HOME=/image/home does not move it), as apptainer's own conversion does", async () => {
      const home = ['sh', '-c', 'echo "$HOME"']
      const ours = await apptainer('exec', root('plain'), home, {user})
      const theirs = await apptainer('exec', sandboxes.plain!, home, {user})
      expect(ours.stdout).toBe(theirs.stdout)
      expect(ours.stdout).toMatch(/^\/[a-z]+\n$/)
      expect(ours.stdout).not.toBe('/image/home\n')
    })
  })

  it("gives the same output as apptainer's own conversion of the image (the oracle)", async () => {
    for (const c of CASES) {
      // (stderr differs where apptainer warns about what its own conversion lacks: /etc/passwd, …)
      const {stderr: _theirs, ...theirs} = await runCase(c, sandboxes[c.image]!, 'root')
      const {stderr: _ours, ...ours} = await runCase(c, root(c.image), 'root')
      expect({title: c.title, ...ours}).toEqual({title: c.title, ...theirs})
    }
  })

  it('lets --env-file win over Env too', async () => {
    const file = join(work(), 'env-file')
    await writeFile(file, 'FOO=from-file\n')
    const result = await apptainer('exec', root('plain'), ['sh', '-c', 'echo "$FOO"'], {options: ['--env-file', file]})
    expect({exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr}).toEqual({exitCode: 0, stdout: 'from-file\n', stderr: ''})
  })

  it('shows the labels to `apptainer inspect`', async () => {
    const result = await apptainer('inspect', root('plain'), [], {options: ['--labels', '--json']})
    expect(result.exitCode, result.stderr).toBe(0)
    const labels = JSON.parse(result.stdout).data.attributes.labels
    expect(labels).toEqual(IMAGES.plain!.config!.Labels)
  })

  it('runs where apptainer may create no mount point (underlay and overlay disabled)', async () => {
    // A node whose apptainer.conf says `enable underlay = no` and `enable overlay = no`:
    // apptainer then needs /dev, /root (root's home) … in the image (without /dev it
    // fails: "destination /dev doesn't exist in container").
    const conf = (await readFile('/usr/local/etc/apptainer/apptainer.conf', 'utf8'))
      .replace(/^enable underlay = .*$/m, 'enable underlay = no')
      .replace(/^enable overlay = .*$/m, 'enable overlay = no')
    expect(conf).toContain('enable underlay = no')
    const file = join(work(), 'no-layers.conf')
    await writeFile(file, conf)
    const result = await apptainer('exec', root('plain'), ['sh', '-c', 'echo "$FOO"'], {global: ['-c', file]})
    expect({exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr}).toEqual({exitCode: 0, stdout: 'bar\n', stderr: ''})
  })
})

const repo = testRepository('apptainer')

describe(`apptainer through a CVMFS client mount of a real repository, ${repo.name}`, () => {
  const {name} = repo
  let client: string
  let duccRef: string
  let linkedRef: string
  let linkedAdded: {status: string; added: string[]}
  const env = () => repo.env
  const root = (ref: string) => join(client, ref)

  beforeAll(async () => {
    await repo.start()
    // DUCC converts an image like `plain` (another config, so another root); cvmfs-oci then
    // links another tag of it to DUCC's root.
    const layout = join(work(), 'layout-ducc')
    await writeOciLayout(layout, [{tag: 't', image: DUCC_IMAGE}])
    duccRef = await pushLayout(layout, 't', registry, 'apptainer-e2e/ducc:1')
    linkedRef = await pushLayout(layout, 't', registry, 'apptainer-e2e/ducc:2')
    await duccConvert(join(work(), 'ducc-tmp'), `http://${duccRef}`, name)
    const out = JSON.parse(await cliOk(['publish', '--repo', name, '--tls-verify=false', '--json', ...Object.values(refs), linkedRef], {env: env()}))
    linkedAdded = (out.images as {name: string; status: string; added: string[]}[]).find((image) => linkedRef.endsWith(image.name))!
    client = await repo.client()
  }, 300_000)
  afterAll(async () => {
    await repo.cleanup()
  }, 120_000)

  describe.each(['root', 'nobody'] as ApptainerUser[])('as %s', (user) => {
    it.each([...CASES, ...OURS_ONLY])('$title', async (c) => {
      expect(await runCase(c, root(refs[c.image]!), user)).toEqual({exitCode: 0, stdout: c.stdout, stderr: ''})
    })
  })

  it("serves cvmfs-oci's own roots to the cases above (not DUCC's)", async () => {
    for (const image of Object.keys(IMAGES) as ImageName[]) {
      const script = await readFile(join(root(refs[image]!), ENV_SCRIPT), 'utf8')
      expect(script).toBe(envScript(IMAGES[image]!.config!.Env))
    }
  })

  it("keeps DUCC's files in DUCC's root, which apptainer runs as before", async () => {
    for (const ref of [duccRef, linkedRef]) {
      for (const c of CASES.filter((c) => c.image === 'plain')) {
        expect({ref, ...(await runCase(c, root(ref), 'root'))}).toEqual({ref, exitCode: 0, stdout: c.stdout, stderr: ''})
      }
    }
    // Publish linking a name to DUCC's root added only what DUCC leaves out.
    expect(linkedAdded.status).toBe('linked')
    expect(linkedAdded.added.filter((path) => path.startsWith('.singularity.d'))).toEqual(['.singularity.d/labels.json'])
    // DUCC's own env script is still there, and the hook's reader (for roots without a config) decodes it.
    const script = await readFile(join(root(duccRef), '.singularity.d/env/10-docker2singularity.sh'), 'utf8')
    expect(parseSingularityEnv(script)).toEqual(DUCC_IMAGE.config!.Env)
  })
})

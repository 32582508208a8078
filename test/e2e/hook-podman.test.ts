/**
 * The hook with real podman: installed by `cvmfs-oci hook install` into a private
 * hooks directory, it gives `--rootfs` containers of a published image that
 * image's Env, WorkingDir and User, lets the user's flags win, and hands every
 * other container back exactly the config podman made.
 */
import {chmod, cp, mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cliOk} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

describe('the OCI hook under podman', () => {
  const work = useTempDir('cvmfs-oci-hook-e2e-', 'all')
  let hooks: string
  let podman: IsolatedPodman
  let readonly: ReadonlyMount
  let ref: string
  let rootfs: string

  /** A hook that records the config it is given and passes it on unchanged. */
  async function recorder(name: string): Promise<string> {
    const dir = join(work(), `seen-${name}`)
    await mkdir(dir)
    const script = join(work(), `record-${name}.sh`)
    await writeFile(script, `#!/bin/sh\nf=$(mktemp -p ${dir})\ncat > "$f"\ncat "$f"\n`)
    await chmod(script, 0o755)
    await writeFile(join(hooks, `${name}.json`), JSON.stringify({version: '1.0.0', hook: {path: script}, when: {always: true}, stages: ['precreate']}))
    return dir
  }

  async function lastSeen(dir: string): Promise<Buffer> {
    const files = await readdir(dir)
    expect(files.length).toBeGreaterThan(0)
    const contents = await Promise.all(files.map(async (f) => ({f, data: await readFile(join(dir, f))})))
    await Promise.all(files.map((f) => rm(join(dir, f))))
    expect(contents).toHaveLength(1)
    return contents[0]!.data
  }

  beforeAll(async () => {
    requireTools('podman', 'runc', 'skopeo', 'busybox')
    hooks = join(work(), 'hooks.d')
    const layout = join(work(), 'layout')
    await writeOciLayout(layout, [
      {
        tag: '1',
        image: {
          layers: [{entries: busyboxLayer()}, {entries: [{name: 'work/', type: 'directory', mode: 0o777}]}],
          config: {Env: ['PATH=/bin', 'FOO=bar'], WorkingDir: '/work', User: '1000', Cmd: ['/bin/sh']},
        },
      },
    ])
    ref = await pushLayout(layout, '1', registryAddress(), 'e2e/hooked:1')
    await cliOk(['publish', '--root', join(work(), 'repo'), '--tls-verify=false', ref])
    readonly = await readonlyBindMount(join(work(), 'repo'))
    rootfs = (await cliOk(['resolve', '--root', readonly.path, ref])).trim()
    await cliOk(['hook', 'install', '--hooks-dir', hooks])
    podman = await isolatedPodman()
  })
  afterAll(async () => {
    await podman?.cleanup()
    await readonly?.unmount()
  })

  const probe = ['/bin/sh', '-c', 'echo "$FOO"; pwd; id -u; echo "$PATH"']
  const run = async (args: string[]) => {
    const result = await podman.run(['run', '--rm', '--hooks-dir', hooks, ...args])
    expect(result.exitCode, result.stderr).toBe(0)
    return result.stdout
  }

  it('the installed hook file passes hook validate', async () => {
    expect(await cliOk(['hook', 'validate', join(hooks, 'cvmfs-oci.json')])).toBe('')
  })

  it("gives a read-only --rootfs container its image's Env, WorkingDir and User", async () => {
    expect(await run(['--rootfs', rootfs, ...probe])).toBe('bar\n/work\n1000\n/bin\n')
  })

  it('does the same through :O', async () => {
    expect(await run(['--rootfs', `${rootfs}:O`, ...probe])).toBe('bar\n/work\n1000\n/bin\n')
  })

  it("lets the user's --env, --workdir and --user win", async () => {
    expect(await run(['-e', 'FOO=x', '-w', '/tmp', '--user', '0', '--rootfs', `${rootfs}:O`, ...probe])).toBe('x\n/tmp\n0\n/bin\n')
  })

  it('hands any other container back exactly the config podman made', async () => {
    const before = await recorder('00-before')
    const after = await recorder('zz-after')
    try {
      // The same tree, but not at a published place.
      const plain = join(work(), 'plain-rootfs')
      await cp(rootfs, plain, {recursive: true, verbatimSymlinks: true})
      expect(await run(['--rootfs', plain, ...probe])).toBe('\n/\n0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n')
      const given = await lastSeen(before)
      expect((await lastSeen(after)).equals(given)).toBe(true)

      // And for a published root the recorders see the change happen between them.
      await run(['--rootfs', rootfs, ...probe])
      const published = JSON.parse((await lastSeen(before)).toString())
      const changed = JSON.parse((await lastSeen(after)).toString())
      expect(published.process.cwd).toBe('/')
      expect(changed.process.cwd).toBe('/work')
    } finally {
      await rm(join(hooks, '00-before.json'), {force: true})
      await rm(join(hooks, 'zz-after.json'), {force: true})
    }
  })
})

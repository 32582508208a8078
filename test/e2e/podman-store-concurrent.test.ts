/**
 * Readers during a publish: a node's podman lists the store (and runs an image from it)
 * in a loop through a read-only view while `cvmfs-oci publish` adds images one after the
 * other. podman must never fail and always see a whole store — the old one or the new one
 * — and so must a reader that parses images.json, then layers.json, as containers/storage
 * does, as fast as it can.
 */
import {randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, expect, it} from 'vitest'

import {busyboxLayer} from '../helpers/busybox.js'
import {cli, cliOk} from '../helpers/cli.js'
import {writeOciLayout} from '../helpers/oci-layout.js'
import {isolatedPodman, readonlyBindMount, type IsolatedPodman, type ReadonlyMount} from '../helpers/podman.js'
import {pushLayout, registryAddress} from '../helpers/registry.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const IMAGES = 8

const work = useTempDir('cvmfs-oci-store-race-', 'all')
let repo: string
let readonly: ReadonlyMount
let podman: IsolatedPodman
let refs: string[]

beforeAll(async () => {
  requireTools('podman', 'runc', 'skopeo', 'busybox', 'mount')
  repo = join(work(), 'repo')
  const layout = join(work(), 'layout')
  // Each image carries 3 MiB of its own, so each publish takes a moment.
  await writeOciLayout(
    layout,
    Array.from({length: IMAGES + 1}, (_, i) => ({
      tag: `t${i}`,
      image: {layers: [{entries: busyboxLayer()}, {entries: [{name: 'payload', content: randomBytes(3 << 20)}]}], config: {Env: ['PATH=/bin'], Cmd: ['/bin/sh']}},
    })),
  )
  refs = []
  for (let i = 0; i <= IMAGES; i++) refs.push(await pushLayout(layout, `t${i}`, registryAddress(), `e2e-race/img:${i}`))
  // The store exists before podman is pointed at it (podman refuses a missing one).
  await cliOk(['publish', '--root', repo, '--tls-verify=false', refs[0]!])
  readonly = await readonlyBindMount(repo)
  podman = await isolatedPodman()
})

afterAll(async () => {
  await podman?.cleanup()
  await readonly?.unmount()
})

it('podman never fails, and always sees a whole store, while a publish adds images', async () => {
  const store = join(readonly.path, 'podmanStore')
  const pm = (args: string[]) => podman.run(['--storage-opt', `additionalimagestore=${store}`, ...args])
  const publish = cli(['publish', '--root', repo, '--tls-verify=false', ...refs.slice(1)], {timeoutMs: 300_000})
  let done = false
  void publish.finally(() => (done = true))

  const counts: number[] = []
  const failures: string[] = []
  const podmanLoop = async () => {
    for (let i = 0; !done; i++) {
      const result = i % 3 === 2 ? await pm(['run', '--rm', refs[0]!, '/bin/sh', '-c', 'echo ok']) : await pm(['images', '--format', 'json'])
      if (result.exitCode !== 0) failures.push(`podman exited ${result.exitCode}: ${result.stderr}`)
      else if (i % 3 === 2 && result.stdout !== 'ok\n') failures.push(`the container said ${JSON.stringify(result.stdout)}`)
      else if (i % 3 !== 2) counts.push((JSON.parse(result.stdout) as unknown[]).length)
    }
  }
  let reads = 0
  const fileLoop = async () => {
    while (!done) {
      // As containers/storage reads them: images first, layers when it needs one.
      const images = JSON.parse(await readFile(join(store, 'overlay-images/images.json'), 'utf8')) as {names: string[]; layer: string}[]
      const layers = JSON.parse(await readFile(join(store, 'overlay-layers/layers.json'), 'utf8')) as {id: string}[]
      const missing = images.filter((image) => !layers.some((l) => l.id === image.layer))
      if (missing.length > 0) failures.push(`images.json names layers layers.json lacks: ${missing.map((i) => i.layer).join(', ')}`)
      reads++
      await new Promise((r) => setImmediate(r))
    }
  }
  await Promise.all([podmanLoop(), fileLoop()])
  const result = await publish
  expect(result.exitCode, result.stderr).toBe(0)

  expect(failures).toEqual([])
  // The loops overlapped the publish: podman saw the store between its first and last state.
  expect(counts.length).toBeGreaterThan(3)
  expect(counts.some((n) => n > 1 && n < IMAGES + 1), `image counts seen: ${counts.join(' ')}`).toBe(true)
  expect(counts).toEqual([...counts].sort((x, y) => x - y))
  expect(reads).toBeGreaterThan(counts.length)
  const final = JSON.parse((await pm(['images', '--format', 'json'])).stdout) as {Names: string[]}[]
  expect(final.flatMap((i) => i.Names).sort()).toEqual([...refs].sort())
})

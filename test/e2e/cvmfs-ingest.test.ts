/**
 * The ingest backend (`--ingest`) against a real CernVM-FS stratum-0: no transaction
 * mount; each change goes out as `cvmfs_server ingest` tar streams (a new flat root with
 * its `.cvmfscatalog`: a nested catalog), deletions as `ingest -d`, and the extended
 * attributes ingest drops set in one short transaction before any link names the root.
 * The flat root, read through the stratum-0's mount and through a plain client mount,
 * must equal what umoci unpacks from the same image, as CernVM-FS publishes it (hardlinks
 * split): modes, owners, symlinks, devices, FIFOs, xattrs (security.capability included),
 * long and non-ASCII names.
 */
import {lstat, mkdtemp, readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {cli, unwrapped} from '../helpers/cli.js'
import {changeCalls, testRepository} from '../helpers/cvmfs.js'
import {exec} from '../helpers/exec.js'
import {writeOciLayout, type ImageSpec} from '../helpers/oci-layout.js'
import {pushImage, pushLayout, registryAddress} from '../helpers/registry.js'
import {fileCapability} from '../helpers/tar.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'
import {asPublishedToCvmfs, diffTrees, snapshotTree, umociUnpack} from '../helpers/tree.js'
import {LONG_NAME, NON_ASCII, trickyImage} from './tricky-images.js'

const repo = testRepository('ingest')
const work = useTempDir('cvmfs-oci-ingest-', 'all')
let layout: string
let ref: string
const unique = `ingest-${Date.now().toString(36)}`
const run = (args: string[], env: Record<string, string> = {}) => cli(args, {env: {...repo.env, ...env}})
const publish = (image: string, env?: Record<string, string>) => run(['publish', '--repo', repo.name, '--ingest', '--tls-verify=false', '--json', image], env)

/** A small image with a capability (cap_net_raw+ep) and a user.* attribute, distinct per `tag`. */
function capsImage(tag: string): ImageSpec {
  return {
    layers: [
      {
        entries: [
          {name: 'bin/', type: 'directory'},
          {name: 'bin/ping', content: `ping ${tag}\n`, mode: 0o755, xattrs: {'security.capability': fileCapability(['cap_net_raw', 'e'])}},
          {name: 'etc/', type: 'directory'},
          {name: 'etc/origin', content: `${tag}\n`, xattrs: {'user.origin': Buffer.from(tag)}},
        ],
      },
    ],
  }
}

/** The config digest of an image as the test layouts write it. */
async function configDigest(image: ImageSpec): Promise<string> {
  const [written] = await writeOciLayout(await mkdtemp(join(work(), 'digest-')), [{tag: 't', image}])
  return written!.configDigest
}

const flatRootOf = (digest: string) => `.flat/${digest.slice(7, 9)}/${digest.slice(7)}`
const metadataOf = (reference: string) => `.metadata/${reference}`

/** What a worker node sees of an image's capability and user attribute. */
async function attributesSeenByClient(image: string): Promise<{cap: string; origin: string}> {
  const client = await repo.client()
  const rootfs = (await run(['resolve', '--root', client, image])).stdout.trim()
  expect(rootfs.startsWith(client)).toBe(true)
  const cap = (await exec('getcap', [join(rootfs, 'bin', 'ping')])).stdout.trim()
  const origin = (await exec('getfattr', ['-n', 'user.origin', '--only-values', join(rootfs, 'etc', 'origin')])).stdout
  return {cap, origin}
}

beforeAll(async () => {
  requireTools('skopeo', 'umoci', 'getfattr', 'setfattr', 'getcap', 'chattr')
  await repo.start()
  layout = join(work(), 'layout')
  await writeOciLayout(layout, [{tag: 'tricky', image: trickyImage()}])
  ref = await pushLayout(layout, 'tricky', registryAddress(), `${unique}/tricky:1`)
})
afterAll(async () => {
  await repo.cleanup()
})

describe(`publish --repo --ingest, into the real stratum-0 ${repo.name}`, () => {
  it('sends the flat root as a tar with its nested catalog, sets its xattrs in a transaction before linking it; umoci unpacks the same tree', async () => {
    const result = await publish(ref)
    expect(result.exitCode, result.stderr).toBe(0)
    const published = JSON.parse(result.stdout).images[0]
    const hex = (published.configDigest as string).slice(7)
    const flat = `.flat/${hex.slice(0, 2)}/${hex}`
    const n = repo.name
    // A fresh repository has no .flat: the flat root's call is based there (a tar entry for
    // it, never a directory cvmfs_server makes up), then its attributes, then the rest, links last.
    expect(changeCalls(await repo.calls())).toEqual([
      `ingest -t - -b .flat -k ${n} => 0`,
      `transaction ${n}/${flat} => 0`,
      `publish ${n} => 0`,
      `ingest -t - -b .flat -k ${n} => 0`,
      `ingest -t - -b .metadata -k ${n} => 0`,
      `ingest -t - -b ${registryAddress()} -k ${n} => 0`,
      `ingest -t - -b podmanStore -k ${n} => 0`,
    ])
    const catalogs = (await exec('cvmfs_server', ['list-catalogs', n])).stdout
    for (const nested of ['/.flat', `/${flat}`, '/podmanStore']) expect(catalogs).toContain(`${nested}\n`)
    // Every directory ingest made is owned as the upper directory said (root here), none by
    // the 4294967295 (shown as 65534) cvmfs_server gives the directories it makes up.
    for (const dir of ['.flat', `.flat/${hex.slice(0, 2)}`, flat, '.metadata', registryAddress(), 'podmanStore']) {
      expect(await stat(join(repo.root, dir)), dir).toMatchObject({uid: 0, gid: 0})
    }

    const added = new Set<string>(published.added)
    const exclude = (rel: string) => rel === '.cvmfscatalog' || added.has(rel)
    const theirs = asPublishedToCvmfs(await snapshotTree(await umociUnpack(layout, 'tricky', join(work(), 'bundle'))))
    const client = await repo.client()
    for (const root of [repo.root, client]) {
      const rootfs = (await run(['resolve', '--root', root, ref])).stdout.trim()
      expect(rootfs).toBe(join(root, flat))
      const ours = await snapshotTree(rootfs, {exclude})
      expect(diffTrees(theirs, asPublishedToCvmfs(ours)), root).toEqual([])
      expect(ours.get('caps/ping')?.xattrs['security.capability']).toMatch(/^0[01]000002/)
      expect(ours.get('etc/noted')?.xattrs['user.note']).toBe(Buffer.from('hello').toString('hex'))
      // Hardlinks come out as separate files (CernVM-FS splits every hardlink at publish).
      expect([...ours.values()].filter((info) => info.hardlink !== undefined)).toEqual([])
      expect(ours.get('usr/bin/wall')?.mode).toBe(0o2755)
      expect(ours.get('dev/null')).toMatchObject({type: 'char', rdev: '1:3'})
      expect(ours.get(LONG_NAME)?.type).toBe('file')
      expect(ours.get(NON_ASCII)?.type).toBe('file')
      expect((await exec('getcap', [join(rootfs, 'caps', 'ping')])).stdout).toMatch(/ (cap_net_raw,cap_setuid|cap_setuid,cap_net_raw)=ep\n$/)
    }

    await repo.clearCalls()
    expect((await publish(ref)).stderr).toContain('unchanged')
    expect(changeCalls(await repo.calls())).toEqual([])
  })

  it('leaves directories that transactions and later ingests write into', async () => {
    // Transactions copy the directories ingest made up into their union; ingest copies them into its overlay.
    const viaTransaction = await pushImage(work(), capsImage('transaction'), `${unique}/caps-transaction:1`)
    const transaction = await run(['publish', '--repo', repo.name, '--tls-verify=false', viaTransaction])
    expect(transaction.exitCode, transaction.stderr).toBe(0)
    const viaIngest = await pushImage(work(), capsImage('ingest'), `${unique}/caps-ingest:1`)
    await repo.clearCalls()
    const ingested = await publish(viaIngest)
    expect(ingested.exitCode, ingested.stderr).toBe(0)
    const hex = (JSON.parse(ingested.stdout).images[0].configDigest as string).slice(7)
    // .flat exists now: the flat root's call is based on its <hh> directory, or on itself
    // when that exists; the directories on its way went with it, so .flat needs no call of its own.
    const n = repo.name
    expect(changeCalls(await repo.calls())).toEqual([
      expect.stringMatching(new RegExp(`^ingest -t - -b \\.flat/${hex.slice(0, 2)}(/${hex})? -k ${n.replaceAll('.', '\\.')} => 0$`)),
      `transaction ${n}/.flat/${hex.slice(0, 2)}/${hex} => 0`,
      `publish ${n} => 0`,
      `ingest -t - -b .metadata -k ${n} => 0`,
      `ingest -t - -b ${registryAddress()} -k ${n} => 0`,
      `ingest -t - -b podmanStore -k ${n} => 0`,
    ])
    expect(await attributesSeenByClient(viaTransaction)).toEqual({cap: expect.stringContaining('cap_net_raw=ep'), origin: 'transaction'})
    expect(await attributesSeenByClient(viaIngest)).toEqual({cap: expect.stringContaining('cap_net_raw=ep'), origin: 'ingest'})
  })

  it('sends nothing when the image fails verification, and leaves no scratch behind', async () => {
    const bad = join(work(), 'bad')
    await writeOciLayout(bad, [{tag: '1', image: {layers: [{entries: [{name: 'etc/', type: 'directory'}, {name: 'etc/../../x', content: 'x'}]}]}}])
    const before = await snapshotTree(repo.root)
    await repo.clearCalls()
    const result = await run(['publish', '--repo', repo.name, '--ingest', '--name', `example.org/${unique}/bad:1`, `oci:${bad}:1`])
    expect(result.exitCode).toBe(4)
    expect(result.stderr).toContain('E_HOSTILE_TRAVERSAL')
    expect(changeCalls(await repo.calls())).toEqual([])
    expect(diffTrees(before, await snapshotTree(repo.root))).toEqual([])
    expect((await readdir(join(repo.env.CVMFS_OCI_STATE_DIR!, repo.name))).filter((e) => e.startsWith('ingest.'))).toEqual([])
  })

  it('killed before it set the xattrs: the next run deletes the flat root it left, and publishes it whole', async () => {
    const image = await pushImage(work(), capsImage('killed'), `${unique}/caps-killed:1`)
    await repo.clearCalls()
    // SIGKILL to cvmfs-oci right before its transaction: the flat root went in without its attributes.
    const killed = run(['publish', '--repo', repo.name, '--ingest', '--tls-verify=false', image], {
      CVMFS_SERVER_HOOK_VERB: 'transaction',
      CVMFS_SERVER_HOOK: 'kill -KILL "$CVMFS_SERVER_CALLER"; exit 137',
    })
    await expect(killed).rejects.toThrow(/SIGKILL/)
    const flat = flatRootOf(await configDigest(capsImage('killed')))
    // The flat root went in; the transaction was never made (137: the hook killed the caller).
    expect(changeCalls(await repo.calls())).toEqual([expect.stringMatching(/^ingest -t - -b \.flat\/\S+ -k \S+ => 0$/), `transaction ${repo.name}/${flat} => 137`])
    await lstat(join(repo.root, flat)) // there, without its capability, and no link to it
    expect((await run(['resolve', '--root', repo.root, image])).exitCode).toBe(3)

    await repo.clearCalls()
    const again = await publish(image)
    expect(again.exitCode, again.stderr + again.stdout).toBe(0)
    expect(again.stderr).toMatch(new RegExp(`stopped before it set the extended attributes of ${flat.replaceAll('.', '\\.')}.*: deleting them`))
    expect(changeCalls(await repo.calls())[0]).toBe(`ingest -d ${flat} ${repo.name} => 0`)
    expect(JSON.parse(again.stdout).images[0].status).toBe('published')
    expect(await attributesSeenByClient(image)).toEqual({cap: expect.stringContaining('cap_net_raw=ep'), origin: 'killed'})
  })

  it('a transaction that fails to set the xattrs fails the publish, naming the files; the next run cleans up', async () => {
    const image = await pushImage(work(), capsImage('failed'), `${unique}/caps-failed:1`)
    const txn = join('/srv/cvmfs', repo.name, 'data', 'txn')
    let failed
    try {
      // The real publish fails: its storage takes no new objects.
      failed = await run(['publish', '--repo', repo.name, '--ingest', '--tls-verify=false', image], {CVMFS_SERVER_HOOK_VERB: 'transaction', CVMFS_SERVER_HOOK: `chattr +i ${txn}`})
    } finally {
      await exec('chattr', ['-i', txn])
    }
    expect(failed.exitCode).toBe(1)
    const message = unwrapped(failed.stderr)
    expect(message).toContain('E_INGEST_XATTRS')
    expect(message).toMatch(/cvmfs_server ingest drops extended attributes, and setting those of \.flat\/\S+\/bin\/ping, \.flat\/\S+\/etc\/origin in a transaction failed/)
    expect(message).toContain('Publish this image without --ingest')
    expect((await repo.listLine())).not.toContain('in transaction')
    expect((await run(['resolve', '--root', repo.root, image])).exitCode).toBe(3)

    await repo.clearCalls()
    const again = await publish(image)
    expect(again.exitCode, again.stderr + again.stdout).toBe(0)
    expect(await attributesSeenByClient(image)).toEqual({cap: expect.stringContaining('cap_net_raw=ep'), origin: 'failed'})
  })

  it('rm deletes names in a transaction (ingest -d cannot name a path with ":"), gc deletes the flat root with ingest -d', async () => {
    const rootfs = (await run(['resolve', '--root', repo.root, ref])).stdout.trim()
    await repo.clearCalls()
    const removed = await run(['rm', '--repo', repo.name, '--ingest', ref])
    expect(removed.exitCode, removed.stderr).toBe(0)
    expect(changeCalls(await repo.calls()).slice(0, 2)).toEqual([`transaction ${repo.name} => 0`, `publish ${repo.name} => 0`])
    for (const root of [repo.root, await repo.client()]) {
      expect((await run(['resolve', '--root', root, ref])).exitCode, root).toBe(3)
      await expect(lstat(join(root, metadataOf(ref))), root).rejects.toThrow()
    }
    await repo.clearCalls()
    const gc = await run(['gc', '--repo', repo.name, '--ingest', '--grace-period', '0', '--json'])
    expect(gc.exitCode, gc.stderr).toBe(0)
    expect(JSON.parse(gc.stdout).deleted.map((i: {path: string}) => join(repo.root, i.path))).toContain(rootfs)
    expect(changeCalls(await repo.calls())).toEqual([expect.stringMatching(/^ingest -d \.flat\/\S+ .*=> 0$/), `ingest -t - -b podmanStore -k ${repo.name} => 0`])
    await expect(lstat(rootfs)).rejects.toThrow()
    await expect(lstat(join(await repo.client(), rootfs.slice(repo.root.length)))).rejects.toThrow()
  })
})

/**
 * How the ingest backend turns an overlay upper directory into cvmfs_server calls
 * (src/backends/ingest-plan.ts), on directories made by hand: which base each tar gets (never
 * one with a missing parent), what goes through a transaction (deletions of paths with a
 * `:`, extended attributes), and that a directory sent with a flat root is not sent again.
 */
import {mkdir, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {planIngest, type IngestStep} from '../../src/backends/ingest-plan.js'
import {silentLogger} from '../../src/log.js'
import {exec} from '../helpers/exec.js'
import {useTempDir} from '../helpers/temp-dir.js'
import {requireTools} from '../helpers/tools.js'

const A = 'a'.repeat(64)
const C = 'c'.repeat(64)
const dir = useTempDir('cvmfs-oci-plan-', 'all')
let upper: string
let lower: string

async function file(root: string, rel: string, content = 'x\n'): Promise<void> {
  await mkdir(join(root, rel, '..'), {recursive: true})
  await writeFile(join(root, rel), content)
}

/** A step as the calls it stands for, with what each tar holds. */
function describeStep(step: IngestStep, upperDir: string): unknown {
  if (step.delete) return {delete: step.delete}
  if (step.transaction) return {transaction: {remove: step.transaction.remove, xattrs: [...step.transaction.xattrs.keys()].sort()}, flatRoots: step.flatRoots}
  const send = step.send!
  expect(send.dir).toBe(join(upperDir, send.base))
  return {base: send.base}
}

beforeAll(async () => {
  requireTools('mknod', 'setfattr', 'getfattr')
  lower = join(dir(), 'lower')
  upper = join(dir(), 'upper')
  // The repository: .flat with its aa directory, .metadata with an old name.
  await file(lower, '.flat/.cvmfscatalog', '')
  await mkdir(join(lower, '.flat', 'aa'))
  await file(lower, '.metadata/reg:5000/old:1/manifest.json')
  // The change: two new flat roots (one in a new cc directory), one with xattrs; metadata;
  // a link in a new registry directory; the old name deleted (a whiteout).
  await file(upper, `.flat/aa/${A}/.cvmfscatalog`, '')
  await file(upper, `.flat/aa/${A}/bin/ping`)
  await exec('setfattr', ['-n', 'user.note', '-v', 'hello', join(upper, `.flat/aa/${A}/bin/ping`)])
  await file(upper, `.flat/cc/${C}/.cvmfscatalog`, '')
  await file(upper, `.flat/cc/${C}/etc/os-release`)
  await file(upper, '.metadata/reg:5000/new:1/manifest.json')
  await exec('mknod', [join(upper, '.metadata/reg:5000/old:1'), 'c', '0', '0'])
  await mkdir(join(upper, 'reg:5000', 'app'), {recursive: true})
  await symlink(`../../.flat/aa/${A}`, join(upper, 'reg:5000', 'app', 'new:1'))
})

describe('planIngest', () => {
  it('deletes paths with ":" in a transaction, sends flat roots from an existing parent, sets xattrs before the links', async () => {
    const steps = await planIngest(upper, lower, silentLogger())
    expect(steps.map((step) => describeStep(step, upper))).toEqual([
      {transaction: {remove: ['.metadata/reg:5000/old:1'], xattrs: []}, flatRoots: undefined},
      {base: `.flat/aa/${A}`},
      {base: '.flat/cc'}, // cc is new: the tar brings it (./) and the flat root below
      {transaction: {remove: [], xattrs: [`.flat/aa/${A}/bin/ping`]}, flatRoots: [`.flat/aa/${A}`, `.flat/cc/${C}`]},
      // No call for .flat: cc went with its flat root.
      {base: '.metadata'},
      {base: 'reg:5000'}, // new, its parent (the root) exists
    ])
    const cc = steps[2]!.send!
    expect([C, `${C}/etc`, `${C}/etc/os-release`, `${C}/.cvmfscatalog`].map(cc.exclude)).toEqual([false, false, false, false])
    expect(steps[3]!.transaction!.xattrs.get(`.flat/aa/${A}/bin/ping`)?.get('user.note')?.toString()).toBe('hello')
  })

  it('deletes with ingest -d when no path has a ":", and sends nothing that is not new', async () => {
    const gcUpper = join(dir(), 'gc-upper')
    await mkdir(join(gcUpper, '.flat', 'aa'), {recursive: true})
    await exec('mknod', [join(gcUpper, '.flat', 'aa', A), 'c', '0', '0'])
    const steps = await planIngest(gcUpper, lower, silentLogger())
    expect(steps.map((step) => describeStep(step, gcUpper))).toEqual([{delete: [`.flat/aa/${A}`]}])
  })
})

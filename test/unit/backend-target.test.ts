/**
 * Which repository publish, sync, rm and gc write: --root, --repo, or the only one the
 * configuration lists; where CVMFS is mounted and where our state lives; and that resolve
 * searches the configured repositories too.
 */
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {chooseTarget} from '../../src/backends/open.js'
import {DEFAULT_ROOT, searchRoots} from '../../src/layout/roots.js'
import {useTempDir} from '../helpers/temp-dir.js'

const dir = useTempDir('cvmfs-oci-target-', 'all')
const config = async (name: string, json: unknown) => {
  const path = join(dir(), name)
  await writeFile(path, JSON.stringify(json))
  return path
}
const noConfig = () => join(dir(), 'none.json')

describe('choosing the repository', () => {
  it('takes --root as a directory, --repo as /cvmfs/NAME with state in /var/lib/cvmfs-oci', () => {
    expect(chooseTarget({root: 'rel/repo', configPath: noConfig(), env: {}})).toEqual({kind: 'directory', root: join(process.cwd(), 'rel/repo')})
    expect(chooseTarget({repo: 'unpacked.example.org', configPath: noConfig(), env: {}})).toEqual({
      kind: 'cvmfs',
      name: 'unpacked.example.org',
      root: '/cvmfs/unpacked.example.org',
      mount: '/cvmfs',
      stateDir: '/var/lib/cvmfs-oci',
      ingest: false,
    })
    expect(chooseTarget({repo: 'r.org', ingest: true, configPath: noConfig(), env: {CVMFS_OCI_CVMFS_MOUNT: '/mnt/cvmfs', CVMFS_OCI_STATE_DIR: '/srv/state'}})).toMatchObject({
      root: '/mnt/cvmfs/r.org',
      stateDir: '/srv/state',
      ingest: true,
    })
  })

  it('uses the only configured repository, with its settings; flags win', async () => {
    const path = await config('one.json', {repositories: [{name: 'one.org', ingest: true}], cvmfsMount: '/srv/cvmfs', stateDir: '/srv/oci-state'})
    expect(chooseTarget({configPath: path, env: {}})).toMatchObject({kind: 'cvmfs', name: 'one.org', root: '/srv/cvmfs/one.org', stateDir: '/srv/oci-state', ingest: true})
    expect(chooseTarget({configPath: path, ingest: false, env: {}})).toMatchObject({ingest: false})
    expect(chooseTarget({configPath: path, repo: 'other.org', env: {}})).toMatchObject({name: 'other.org', ingest: false})
    expect(chooseTarget({configPath: path, env: {CVMFS_OCI_CVMFS_MOUNT: '/m'}})).toMatchObject({root: '/m/one.org'})
  })

  it('asks for a choice when there is none or several, and refuses contradictions', async () => {
    expect(() => chooseTarget({configPath: noConfig(), env: {}})).toThrow(expect.objectContaining({code: 'E_NO_REPOSITORY', exitCode: 2}))
    const two = await config('two.json', {repositories: [{name: 'a.org'}, {name: 'b.org'}]})
    expect(() => chooseTarget({configPath: two, env: {}})).toThrow(expect.objectContaining({code: 'E_AMBIGUOUS_REPOSITORY', message: expect.stringContaining('a.org, b.org')}))
    expect(() => chooseTarget({root: '/x', ingest: true, configPath: noConfig(), env: {}})).toThrow(/--ingest/)
    expect(() => chooseTarget({root: '/x', repo: 'a.org', configPath: noConfig(), env: {}})).toThrow(/exclude each other/)
    const bad = await config('bad.json', {repositories: [{name: '../etc', mode: 'x'}]})
    expect(() => chooseTarget({configPath: bad, env: {}})).toThrow(expect.objectContaining({code: 'E_BAD_CONFIG', message: expect.stringContaining('/repositories/0/name')}))
  })

  it('lets resolve search the configured repositories after the configured roots', async () => {
    const path = await config('both.json', {roots: ['/data/repo'], repositories: [{name: 'mine.org'}], cvmfsMount: '/srv/cvmfs'})
    expect(searchRoots({configPath: path, env: {CVMFS_OCI_ROOTS: '/env'}})).toEqual(['/data/repo', '/srv/cvmfs/mine.org', '/env', DEFAULT_ROOT])
  })
})

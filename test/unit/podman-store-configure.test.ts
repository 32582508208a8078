/**
 * `cvmfs-oci podman configure` without podman: the storage.conf edit keeps every other
 * byte, is idempotent, and says what is wrong with a file it cannot edit.
 * test/e2e/podman-store.test.ts shows podman reading the result.
 */
import {chmod, lstat, mkdir, readFile, symlink, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {parse} from '@decimalturn/toml-patch'
import {beforeAll, describe, expect, it} from 'vitest'

import {CvmfsOciError} from '../../src/errors.js'
import {silentLogger} from '../../src/log.js'
import {addImageStores, configurePodman, defaultStorageConf, storePaths, storeSnippet} from '../../src/podman-store/configure.js'
import {useTempDir} from '../helpers/temp-dir.js'

/** A storage.conf as distributions ship it: comments everywhere, options and sub-tables. */
const COMMENTED_CONF = `# This file is the configuration file for all tools
# that use the containers/storage library.
[storage]

# Default Storage Driver, Must be set for proper operation.
driver = "overlay"

# Temporary storage location
runroot = "/run/containers/storage"

[storage.options]
# Storage options to be passed to underlying storage drivers

# AdditionalImageStores is used to pass paths to additional Read/Only image stores
# Must be comma separated list.
additionalimagestores = [
  "/srv/other/store", # kept as it is
]

pull_options = {enable_partial_images = "false", use_hard_links = "false", ostree_repos=""}

[storage.options.overlay]
# Path to an helper program to use for mounting the file system
#mount_program = "/usr/bin/fuse-overlayfs"
mountopt = "nodev"
`

const STORE = '/cvmfs/unpacked.example.org/podmanStore'

/** Lines of `after` that are not in `before` (in order), and whether `before`'s lines all survive in order. */
function lineChanges(before: string, after: string): {added: string[]; kept: boolean} {
  const old = before.split('\n')
  const added: string[] = []
  let i = 0
  for (const line of after.split('\n')) {
    if (i < old.length && line === old[i]) i++
    else added.push(line)
  }
  return {added, kept: i === old.length}
}

describe('addImageStores', () => {
  it('appends the store to the list and changes no other line', () => {
    const {text, added, driver} = addImageStores(COMMENTED_CONF, [STORE])
    expect(added).toEqual([STORE])
    expect(driver).toBe('overlay')
    const changes = lineChanges(COMMENTED_CONF, text)
    expect(changes.kept).toBe(true)
    expect(changes.added).toEqual([`  "${STORE}",`])
    expect(parse(text).storage.options.additionalimagestores).toEqual(['/srv/other/store', STORE])
  })

  it('is idempotent, also for the same path spelled with a trailing slash', () => {
    const once = addImageStores(COMMENTED_CONF, [STORE]).text
    expect(addImageStores(once, [STORE])).toEqual({text: once, added: [], driver: 'overlay'})
    expect(addImageStores(once, [`${STORE}/`]).text).toBe(once)
    expect(addImageStores(COMMENTED_CONF, ['/srv/other/store']).text).toBe(COMMENTED_CONF)
  })

  it.each([
    ['no [storage.options]', '# mine\n[storage]\ndriver = "overlay" # why\n'],
    ['an empty list', '[storage]\ndriver = "overlay"\n[storage.options]\nadditionalimagestores = []\n'],
    ['an empty file', ''],
    ['only sub-tables of options', '[storage]\ndriver = "overlay"\n[storage.options.overlay]\nmountopt = "nodev"\n'],
  ])('adds the key where there is %s, keeping every line', (_what, conf) => {
    const {text} = addImageStores(conf, [STORE, '/srv/repo/podmanStore'])
    expect(parse(text).storage.options.additionalimagestores).toEqual([STORE, '/srv/repo/podmanStore'])
    const changes = lineChanges(conf, text)
    expect(changes.kept || conf.includes('[]')).toBe(true)
    expect(text.split('\n').filter((line) => line.includes('podmanStore'))).toHaveLength(1)
  })

  it.each([
    ['not TOML', '[storage\ndriver = overlay'],
    ['a key that is not a list', '[storage.options]\nadditionalimagestores = "/a,/b"\n'],
    ['options that are not a table', '[storage]\noptions = "x"\n'],
  ])('refuses a file that is %s', (_what, conf) => {
    const error = (() => {
      try {
        addImageStores(conf, [STORE], '/etc/containers/storage.conf')
      } catch (e) {
        return e
      }
    })() as CvmfsOciError
    expect(error).toBeInstanceOf(CvmfsOciError)
    expect(error.code).toBe('E_BAD_STORAGE_CONF')
    expect(error.message).toContain('/etc/containers/storage.conf')
  })
})

describe('which file and which store', () => {
  it.each([
    [{CONTAINERS_STORAGE_CONF: '/x/storage.conf'}, 1000, '/x/storage.conf'],
    [{}, 0, '/etc/containers/storage.conf'],
    [{HOME: '/home/u'}, 1000, '/home/u/.config/containers/storage.conf'],
    [{HOME: '/home/u', XDG_CONFIG_HOME: '/cfg'}, 1000, '/cfg/containers/storage.conf'],
  ])('podman reads %j as uid %d from %s', (env, uid, expected) => {
    expect(defaultStorageConf(env, uid)).toBe(expected)
  })

  it('maps --root and --repo to absolute store paths, once each', () => {
    expect(storePaths(['/srv/repo/', '/srv/repo'], ['a.example.org'])).toEqual(['/srv/repo/podmanStore', '/cvmfs/a.example.org/podmanStore'])
    expect(storePaths([], ['a.example.org'], '/mnt/cvmfs')).toEqual(['/mnt/cvmfs/a.example.org/podmanStore'])
    expect(storePaths(['relative'])[0]).toBe(join(process.cwd(), 'relative', 'podmanStore'))
    expect(() => storePaths()).toThrow(/--repo NAME/)
    expect(() => storePaths([], ['../etc'])).toThrow(/not a repository name/)
  })

  it('prints a snippet that is TOML', () => {
    expect(parse(storeSnippet([STORE]))).toEqual({storage: {options: {additionalimagestores: [STORE]}}})
  })
})

describe('configurePodman', () => {
  const top = useTempDir('cvmfs-oci-configure-', 'all')
  beforeAll(async () => {
    await mkdir(join(top(), 'repo', 'podmanStore'), {recursive: true})
  })

  it('edits the file through a symlink, keeps its mode, and creates a missing one', async () => {
    const real = join(top(), 'real.conf')
    await writeFile(real, COMMENTED_CONF)
    await chmod(real, 0o600)
    await symlink(real, join(top(), 'link.conf'))
    const result = await configurePodman({storageConf: join(top(), 'link.conf'), roots: [join(top(), 'repo')], logger: silentLogger()})
    expect(result).toMatchObject({storageConf: real, added: [join(top(), 'repo/podmanStore')], changed: true, created: false})
    expect((await lstat(join(top(), 'link.conf'))).isSymbolicLink()).toBe(true)
    expect((await lstat(real)).mode & 0o777).toBe(0o600)
    expect(await readFile(real, 'utf8')).toContain(join(top(), 'repo/podmanStore'))
    const again = await configurePodman({storageConf: real, roots: [join(top(), 'repo')], logger: silentLogger()})
    expect(again).toMatchObject({changed: false, added: []})

    const fresh = join(top(), 'sub', 'new.conf')
    expect(await configurePodman({storageConf: fresh, roots: [join(top(), 'repo')], logger: silentLogger()})).toMatchObject({created: true, changed: true})
    expect(parse(await readFile(fresh, 'utf8')).storage).toEqual({driver: 'overlay', options: {additionalimagestores: [join(top(), 'repo/podmanStore')]}})
  })

  it('with print touches no file, and warns about a store that is not there', async () => {
    const warnings: string[] = []
    const logger = silentLogger()
    logger.warn = (message: string) => void warnings.push(message)
    const result = await configurePodman({storageConf: join(top(), 'untouched.conf'), repos: ['missing.example.org'], print: true, logger})
    expect(result.snippet).toBe(storeSnippet(['/cvmfs/missing.example.org/podmanStore']))
    await expect(lstat(join(top(), 'untouched.conf'))).rejects.toThrow()
    expect(warnings.join('\n')).toContain('podman refuses to start')
  })
})

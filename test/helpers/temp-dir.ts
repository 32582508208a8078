/**
 * A temp directory for the tests of a file or describe block: `mkdtemp(tmpdir()/PREFIX…)`
 * before, `rm -rf` after, by vitest hooks registered where `useTempDir` is called.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, afterEach, beforeAll, beforeEach} from 'vitest'

/**
 * Registers the hooks of a temp directory named `PREFIX` and six random characters, below
 * `parent` (default `os.tmpdir()`): scope `'each'` makes a fresh one for every test
 * (beforeEach/afterEach), `'all'` one for the whole file or describe block
 * (beforeAll/afterAll). Returns a getter of the current directory; it throws when there
 * is none (outside the tests and hooks of the block).
 *
 * Call it before the block's own hooks that use the directory: its mkdtemp then runs
 * before them and, vitest running after-hooks in reverse (`sequence.hooks: 'stack'`, the
 * default), its rm after their clean-up (a stopped repository, an unmounted view). An
 * after-hook that throws stops the later ones, so a failed unmount leaves the directory
 * in place rather than having rm recurse into a mount.
 */
export function useTempDir(prefix: string, scope: 'each' | 'all' = 'each', parent?: string): () => string {
  let dir: string | undefined
  const make = async () => {
    dir = await mkdtemp(join(parent ?? tmpdir(), prefix))
  }
  const remove = async () => {
    const made = dir
    dir = undefined
    if (made) await rm(made, {recursive: true, force: true})
  }
  if (scope === 'each') {
    beforeEach(make)
    afterEach(remove)
  } else {
    beforeAll(make)
    afterAll(remove)
  }
  return () => {
    if (dir === undefined) throw new Error(`no temp directory ${prefix}… here: useTempDir's directory exists only in the tests and hooks of its block`)
    return dir
  }
}

/**
 * `resolve` and the hook run before container starts: their bundles must not pull in
 * the heavy modules (oclif ~110 ms, execa ~125 ms, ajv's compiler ~80 ms to load).
 * `npm test` builds first, so the bundles are current.
 */
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {TOP} from '../helpers/cli.js'

describe.each(['dist/cli/fast-paths.cjs', 'dist/hook/main.cjs'])('%s', (bundle) => {
  it('loads no heavy module', async () => {
    const text = await readFile(join(TOP, bundle), 'utf8')
    expect(text.length).toBeGreaterThan(1000)
    for (const heavy of ['@oclif/core', 'node_modules/execa', 'require("execa")', 'ajv/dist/core', 'ajv/dist/compile', 'tar-stream', 'tmp-promise']) {
      expect(text, heavy).not.toContain(heavy)
    }
  })
})

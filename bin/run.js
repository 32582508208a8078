#!/usr/bin/env node
// The cvmfs-oci command. CommonJS (bin/package.json), so that `resolve` (run before
// container starts) and `--version` load one bundled file and skip oclif entirely
// (src/cli/fast-paths.ts); everything else is an oclif command.
'use strict'
// Node.js >= 22.1 can cache compiled code between runs; on older versions the router
// loads the bundles through a code cache of its own (src/cli/code-cache.ts). node:module
// is loaded only where it is used: on Node.js 20 it brings the ES module loader along.
const [major, minor] = process.versions.node.split('.').map(Number)
const nodeCaches = major > 22 || (major === 22 && minor >= 1)
if (nodeCaches) require('node:module').enableCompileCache()
// The router gets node:module's Module class as this module's constructor.
require('../dist/cli/fast-paths.cjs')
  .fastPath(process.argv.slice(2), {Module: module.constructor, nodeCaches})
  .then(async (code) => {
    if (code !== undefined) {
      process.exitCode = code
      return
    }
    // Commands are built JavaScript: never look for TypeScript (oclif would under NODE_ENV=development).
    globalThis.oclif = {...globalThis.oclif, enableAutoTranspile: false}
    const {execute} = await import('@oclif/core')
    // The package root (bin/package.json only marks bin/ as CommonJS).
    await execute({dir: require('node:path').join(__dirname, '..')})
  })

// Preloaded (`node --require`) into a cvmfs-oci run by test/unit/hot-paths.test.ts: writes
// to $CVMFS_OCI_LOAD_TRACE the files the run had loaded when it started its first
// subprocess (its own work has begun by then), or when it exited if it started none:
// CommonJS modules (require.cache, which holds those ES modules import too) and every ES
// module (through a module.register resolve hook, which sees every import).
'use strict'
const childProcess = require('node:child_process')
const {appendFileSync, readFileSync, writeFileSync} = require('node:fs')
const {register, syncBuiltinESMExports} = require('node:module')
const {pathToFileURL} = require('node:url')

const out = process.env.CVMFS_OCI_LOAD_TRACE
if (!out) throw new Error('load-trace.cjs: set CVMFS_OCI_LOAD_TRACE to the file to write')
const esmFile = `${out}.esm`
writeFileSync(esmFile, '')
register('./load-trace-hooks.mjs', pathToFileURL(__filename), {data: {file: esmFile}})

let written = false
function snapshot(when) {
  if (written) return
  written = true
  const esm = readFileSync(esmFile, 'utf8').split('\n').filter(Boolean)
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length))
  writeFileSync(out, JSON.stringify({when, cjs: Object.keys(require.cache), esm, builtins}))
}

for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'fork']) {
  const original = childProcess[name]
  childProcess[name] = function (...args) {
    snapshot(`${name} ${String(args[0])}`)
    return original.apply(this, args)
  }
}
// ES modules that import {spawn} from 'node:child_process' see the wrapped functions too.
syncBuiltinESMExports()
process.on('exit', () => snapshot('exit'))

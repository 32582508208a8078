#!/usr/bin/env node
// The OCI hook program (src/hook/main.ts, bundled into one CommonJS file for start-up
// speed). podman runs hooks with an empty PATH, so the hook JSON names the node binary
// by absolute path with this file as its argument; the RPM installs a copy whose
// shebang is absolute.
'use strict'
// Node.js >= 22.1 can cache compiled code between runs; older versions skip this (and do
// not load node:module, which on Node.js 20 brings the ES module loader along, ~2 ms).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major > 22 || (major === 22 && minor >= 1)) require('node:module').enableCompileCache()
require('../dist/hook/main.cjs').main()

#!/usr/bin/env node
// The OCI hook program (src/hook/main.ts, bundled into one CommonJS file for start-up
// speed). podman runs hooks with an empty PATH, so the hook JSON names the node binary
// by absolute path with this file as its argument; the RPM installs a copy whose
// shebang is absolute.
'use strict'
// Node.js >= 22.1 can cache compiled code between runs; older versions skip this.
require('node:module').enableCompileCache?.()
require('../dist/hook/main.cjs').main()

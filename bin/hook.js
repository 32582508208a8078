#!/usr/bin/env node
// The OCI hook program (see src/hook/main.ts). podman runs hooks with an empty
// PATH, so the hook JSON names the node binary by absolute path with this file as
// its argument; the RPM installs a copy whose shebang is absolute.
const {main} = await import('../dist/hook/main.js')
main()

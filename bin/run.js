#!/usr/bin/env node
// `resolve` runs before container starts and `--version` is what scripts probe:
// both skip oclif (see src/cli/fast-paths.ts); everything else is an oclif command.
const argv = process.argv.slice(2)
const {fastPath} = await import('../dist/cli/fast-paths.js')
const code = await fastPath(argv)
if (code === undefined) {
  // Commands are built JavaScript: never look for TypeScript (oclif would under NODE_ENV=development).
  globalThis.oclif = {...globalThis.oclif, enableAutoTranspile: false}
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
} else {
  process.exitCode = code
}

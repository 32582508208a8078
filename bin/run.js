#!/usr/bin/env node
// `resolve` runs before container starts: it skips oclif (see src/cli/resolve-main.ts).
const argv = process.argv.slice(2)
if (argv[0] === 'resolve' && !argv.some((a) => a === '--help' || a === '-h')) {
  const {resolveMain} = await import('../dist/cli/resolve-main.js')
  process.exitCode = await resolveMain(argv.slice(1))
} else {
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}

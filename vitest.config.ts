import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    // Generous: a slow CI machine must not cut a test short and leave its processes running into the next.
    testTimeout: 240_000,
    // beforeAll hooks make real CVMFS repositories, one at a time across files (the kit lock).
    hookTimeout: 300_000,
    // Files share one registry but write only into their own temp dirs and CVMFS repositories.
    fileParallelism: true,
    maxWorkers: 2,
  },
})

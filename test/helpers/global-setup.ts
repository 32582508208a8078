/**
 * vitest globalSetup: one real Distribution registry (`docker-registry serve`)
 * on 127.0.0.1 for the whole run, storing into a temp dir. Tests get its
 * address with `inject('registry')` (or `registryAddress()` from registry.ts).
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type {TestProject} from 'vitest/node'
import {startRegistryProcess, type RegistryProcess} from './registry-process.js'
import {requireTools} from './tools.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the test registry (plain HTTP). */
    registry: string
  }
}

/** Start the registry, provide its address, return the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  requireTools('docker-registry')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cvmfs-oci-registry-'))
  let started: RegistryProcess
  try {
    started = await startRegistryProcess(dir)
  } catch (err) {
    await rm(dir, {recursive: true, force: true})
    throw err
  }
  project.provide('registry', started.address)
  return async () => {
    await started.stop()
    await rm(dir, {recursive: true, force: true})
  }
}

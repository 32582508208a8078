/**
 * vitest globalSetup: one real Distribution registry (`docker-registry serve`)
 * on 127.0.0.1 for the whole run, storing into a temp dir. Tests get its
 * address with `inject('registry')` (or `registryAddress()` from registry.ts).
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type {TestProject} from 'vitest/node'
import {tail} from './exec.js'
import {requireTools} from './tools.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the test registry (plain HTTP). */
    registry: string
  }
}

const STARTUP_TIMEOUT_MS = 20_000
const START_ATTEMPTS = 3

/** A loopback port that was free a moment ago (whoever takes it may still lose a race). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

function registryConfig(port: number, storage: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storage)}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n')
}

/** Wait until `GET /v2/` answers 200, the process dies, or time runs out. */
async function waitReady(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  let lastError = ''
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before answering ${url}:\n${tail(stderr())}`)
    }
    try {
      const res = await fetch(url, {signal: AbortSignal.timeout(1000)})
      if (res.status === 200) return
      lastError = `HTTP ${res.status}`
    } catch (err) {
      lastError = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`docker-registry did not answer 200 on ${url} within ${STARTUP_TIMEOUT_MS} ms (last: ${lastError}):\n${tail(stderr())}`)
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(force)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

async function startRegistry(dir: string): Promise<{child: ChildProcess; address: string}> {
  let lastError: Error | undefined
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort()
    const configFile = path.join(dir, 'config.yml')
    await writeFile(configFile, registryConfig(port, path.join(dir, 'storage')))
    const child = spawn('docker-registry', ['serve', configFile], {stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-20_000)
    })
    // Never leave a registry behind, even if vitest dies without teardown.
    const killOnExit = () => child.kill('SIGKILL')
    process.once('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start docker-registry: ${err.message}`))))
    spawnError.catch(() => undefined) // only observed through the race below
    try {
      await Promise.race([waitReady(child, `http://127.0.0.1:${port}/v2/`, () => stderr), spawnError])
      return {child, address: `127.0.0.1:${port}`}
    } catch (err) {
      lastError = err as Error
      await stop(child)
      if (!/address already in use/i.test(stderr)) break // only a lost port race is worth retrying
    }
  }
  throw lastError ?? new Error('docker-registry did not start')
}

/** Start the registry, provide its address, return the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  requireTools('docker-registry')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cvmfs-oci-registry-'))
  let started: {child: ChildProcess; address: string}
  try {
    started = await startRegistry(dir)
  } catch (err) {
    await rm(dir, {recursive: true, force: true})
    throw err
  }
  project.provide('registry', started.address)
  return async () => {
    await stop(started.child)
    await rm(dir, {recursive: true, force: true})
  }
}

/**
 * Start and stop a real Distribution registry (`docker-registry serve`) on
 * 127.0.0.1: the one global-setup.ts starts for the whole run, and private ones
 * for tests that read what was fetched from the registry's own access log.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {writeFile} from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import {tail} from './exec.js'

const STARTUP_TIMEOUT_MS = 20_000
const START_ATTEMPTS = 3

/** A running registry. */
export interface RegistryProcess {
  child: ChildProcess
  /** `127.0.0.1:PORT` (plain HTTP). */
  address: string
  /** Everything it printed so far (with `accessLog`, one line per request). */
  output(): string
  /** Its output once nothing new came for `quietMs` (a request's log line follows its response). */
  settledOutput(quietMs?: number): Promise<string>
  stop(): Promise<void>
}

/** A port that was free a moment ago (the registry may still lose a race; we retry). */
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

function registryConfig(port: number, storage: string, accessLog: boolean): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    `    disabled: ${!accessLog}`,
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
async function waitReady(child: ChildProcess, url: string, output: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS
  let lastError = ''
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before answering ${url}:\n${tail(output())}`)
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
  throw new Error(`docker-registry did not answer 200 on ${url} within ${STARTUP_TIMEOUT_MS} ms (last: ${lastError}):\n${tail(output())}`)
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

/**
 * Start a registry storing into `dir/storage` (the caller removes `dir`). With
 * `accessLog`, every request is logged to its output.
 */
export async function startRegistryProcess(dir: string, options: {accessLog?: boolean} = {}): Promise<RegistryProcess> {
  let lastError: Error | undefined
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort()
    const configFile = path.join(dir, 'config.yml')
    await writeFile(configFile, registryConfig(port, path.join(dir, 'storage'), options.accessLog === true))
    const child = spawn('docker-registry', ['serve', configFile], {stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8').on('data', (chunk: string) => {
        output = options.accessLog ? output + chunk : (output + chunk).slice(-20_000)
      })
    }
    // Never leave a registry behind, even if vitest dies without teardown.
    const killOnExit = () => child.kill('SIGKILL')
    process.once('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start docker-registry: ${err.message}`))))
    spawnError.catch(() => undefined) // only observed through the race below
    try {
      await Promise.race([waitReady(child, `http://127.0.0.1:${port}/v2/`, () => output), spawnError])
      const settledOutput = async (quietMs = 300) => {
        for (let seen = -1; seen !== output.length; ) {
          seen = output.length
          await new Promise((r) => setTimeout(r, quietMs))
        }
        return output
      }
      return {child, address: `127.0.0.1:${port}`, output: () => output, settledOutput, stop: () => stop(child)}
    } catch (err) {
      lastError = err as Error
      await stop(child)
      if (!/address already in use/i.test(output)) break // only a lost port race is worth retrying
    }
  }
  throw lastError ?? new Error('docker-registry did not start')
}

/** The blob digests a registry served (`GET …/blobs/sha256:…` answered 200), in order, from its access log. */
export function blobsServed(output: string): string[] {
  return [...output.matchAll(/"GET \/v2\/[^"]*\/blobs\/(sha256:[0-9a-f]{64}) HTTP\/[\d.]+" 200 /g)].map((m) => m[1]!)
}

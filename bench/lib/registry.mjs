// A Distribution registry on loopback for the benchmark (as the tests start one).
import {execFileSync, spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** A loopback port that was free a moment ago. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

export async function startRegistry() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-registry-'))
  const port = await freePort()
  const config = join(dir, 'config.yml')
  writeFileSync(config, `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${port}\nlog:\n  level: error\n`)
  const child = spawn('docker-registry', ['serve', config], {stdio: 'ignore'})
  const address = `127.0.0.1:${port}`
  const deadline = Date.now() + 20000
  for (;;) {
    try {
      const res = await fetch(`http://${address}/v2/`)
      if (res.status === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error('docker-registry did not start (is the docker-registry package installed?)')
    await new Promise((r) => setTimeout(r, 100))
  }
  return {address, stop: () => (child.kill(), rmSync(dir, {recursive: true, force: true}))}
}

/** Push image `tag` of the OCI layout `layout` to `ref` (REGISTRY/REPOSITORY:TAG) on a loopback registry. */
export function pushLayoutImage(layout, tag, ref) {
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${ref}`])
}

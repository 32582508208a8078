// What the hook adds to a container start: paired `podman run --rootfs` of a
// published busybox image with and without the hook installed (A B A B …), and the
// hook program alone fed a real runtime config.
import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import tar from 'tar-stream'

import {pairedTimes, startupTimes} from './measure.mjs'
import {podmanArgv, podmanEnv} from './podman.mjs'

async function busyboxLayout(dir) {
  const {createHash} = await import('node:crypto')
  const pack = tar.pack()
  const chunks = []
  pack.on('data', (c) => chunks.push(c))
  const ended = new Promise((r) => pack.on('end', r))
  pack.entry({name: 'bin/', type: 'directory', mode: 0o755})
  pack.entry({name: 'bin/busybox', mode: 0o755}, readFileSync('/bin/busybox'))
  for (const applet of ['sh', 'true', 'env', 'id']) pack.entry({name: `bin/${applet}`, type: 'symlink', linkname: 'busybox'})
  pack.finalize()
  await ended
  const layer = Buffer.concat(chunks)
  const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`
  mkdirSync(join(dir, 'blobs', 'sha256'), {recursive: true})
  const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', config: {Env: ['PATH=/bin', 'BENCH=1'], WorkingDir: '/bin'}, rootfs: {type: 'layers', diff_ids: [sha(layer)]}}))
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length},
    layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length}],
  }))
  for (const blob of [layer, config, manifest]) writeFileSync(join(dir, 'blobs', 'sha256', sha(blob).slice(7)), blob)
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  writeFileSync(join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, annotations: {'org.opencontainers.image.ref.name': '1'}}]}))
}

export async function benchHook({work, cli, reps}) {
  const dir = join(work, 'hook')
  mkdirSync(dir, {recursive: true})
  await busyboxLayout(join(dir, 'layout'))
  const repo = join(dir, 'repo')
  execFileSync(process.execPath, [cli, 'publish', '-q', '--root', repo, '--name', 'bench.local/busybox:1', `oci:${join(dir, 'layout')}:1`])
  const rootfs = execFileSync(process.execPath, [cli, 'resolve', '--root', repo, 'bench.local/busybox:1']).toString().trim()
  const withHook = join(dir, 'hooks-with')
  const without = join(dir, 'hooks-without')
  mkdirSync(without)
  execFileSync(process.execPath, [cli, 'hook', 'install', '--hooks-dir', withHook], {stdio: 'ignore'})
  const env = podmanEnv(dir)
  const podman = (hooks) => podmanArgv(dir, '--hooks-dir', hooks, 'run', '--rm', '--rootfs', rootfs, '/bin/true')
  const paired = pairedTimes(podman(withHook), podman(without), {reps, env})
  // A runtime config as podman hands it to a precreate hook, for this root.
  const config = JSON.stringify({ociVersion: '1.0.2-dev', process: {user: {uid: 0, gid: 0, umask: 18}, args: ['/bin/true'], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm', 'HOME=/root'], cwd: '/'}, root: {path: rootfs}})
  const hook = JSON.parse(readFileSync(join(withHook, 'cvmfs-oci.json'), 'utf8')).hook
  const program = startupTimes([hook.path, ...hook.args.slice(1)], {input: config})
  return {paired, program}
}

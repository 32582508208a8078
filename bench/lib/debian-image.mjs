// A real image for the real-CVMFS sections: Debian bookworm (debootstrap minbase)
// with python3-numpy and python3-scipy from Debian's archive, as one layer, the
// way `FROM scratch` + `ADD rootfs.tar` would make it (apt's caches and lists
// cleaned, /dev empty). Built once and kept in a cache directory: later runs
// reuse it. The workload run in it is `python3 -c 'import scipy.linalg'`.
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {mkdir, rename} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'

import {writeImageLayout, writeLayerFromTar} from './image.mjs'

export const SCIPY_WORKLOAD = ['python3', '-c', 'import scipy.linalg']
const PACKAGES = ['python3-numpy', 'python3-scipy']
const NAME = 'scipy-bookworm-1'

/** $XDG_CACHE_HOME/cvmfs-oci-bench, else ~/.cache/cvmfs-oci-bench. */
export function defaultCacheDir() {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cvmfs-oci-bench')
}

function must(argv, what) {
  const r = spawnSync(argv[0], argv.slice(1), {stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26})
  if (r.status !== 0) throw new Error(`${what}: ${argv.join(' ')} exited ${r.status ?? r.signal}\n${String(r.stderr).slice(-3000)}${String(r.stdout).slice(-2000)}`)
  return String(r.stdout)
}

/** debootstrap, installed from Debian's archive when missing (as scripts/setup.sh installs its packages). */
function ensureDebootstrap(log) {
  if (spawnSync('sh', ['-c', 'command -v debootstrap']).status === 0) return
  if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
    throw new Error('debootstrap is missing: install it (apt-get install debootstrap) to build the python/scipy image')
  }
  log('  installing debootstrap (apt-get)')
  must(['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'debootstrap'], 'installing debootstrap')
}

/** Unmount whatever a failed debootstrap left mounted below `dir` (its /proc, /sys), before removing it. */
function unmountBelow(dir) {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${dir}/`))
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m])
}

/**
 * The OCI layout of the scipy image (tag `1`) in `cacheDir`, building it first if it
 * is not there: returns {layout, info}. `mirror` is the Debian archive debootstrap uses.
 */
export async function scipyImage({cacheDir = defaultCacheDir(), mirror = 'http://deb.debian.org/debian', log = console.log} = {}) {
  const layout = join(cacheDir, NAME)
  const infoFile = join(layout, 'bench-image.json')
  if (existsSync(infoFile)) return {layout, info: JSON.parse(readFileSync(infoFile, 'utf8')), cached: true}
  if (process.getuid?.() !== 0) throw new Error('building the python/scipy image needs root (debootstrap)')
  ensureDebootstrap(log)
  const build = join(cacheDir, `${NAME}.build-${process.pid}`)
  const root = join(build, 'root')
  await mkdir(build, {recursive: true})
  try {
    const t0 = Date.now()
    log(`  building ${NAME} (first run only): debootstrap --variant=minbase --include=${PACKAGES.join(',')} bookworm from ${mirror}`)
    must(['debootstrap', '--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', root, mirror], 'debootstrap')
    // What an image build leaves out: the downloaded .debs, apt's lists, device nodes.
    for (const dir of ['var/cache/apt/archives', 'var/lib/apt/lists', 'dev']) {
      for (const entry of readdirSync(join(root, dir))) {
        if (entry !== 'partial' && entry !== 'lock') rmSync(join(root, dir, entry), {recursive: true, force: true})
      }
    }
    must(['chroot', root, ...SCIPY_WORKLOAD], 'the workload in the built root')
    const versions = must(['chroot', root, 'dpkg-query', '-W', '-f', '${Package}=${Version}\\n', 'python3', ...PACKAGES], 'dpkg-query').trim().split('\n')
    const files = Number(must(['sh', '-c', `find "${root}" -xdev ! -type d | wc -l`], 'counting files').trim())
    log(`  debootstrap done in ${((Date.now() - t0) / 1000).toFixed(0)} s (${versions.join(' ')}); packing the layer`)
    const image = join(build, 'layout')
    await mkdir(join(image, 'blobs', 'sha256'), {recursive: true})
    const tar = spawn('tar', ['--numeric-owner', '--sort=name', '-C', root, '-cf', '-', '.'], {stdio: ['ignore', 'pipe', 'inherit']})
    const exited = new Promise((resolve) => tar.on('close', resolve))
    let bytes = 0
    tar.stdout.on('data', (chunk) => (bytes += chunk.length))
    const layer = await writeLayerFromTar(image, tar.stdout)
    if ((await exited) !== 0) throw new Error('tar of the built root failed')
    await writeImageLayout(image, [
      {
        tag: '1',
        layers: [layer],
        config: {Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'], Cmd: ['python3']},
      },
    ])
    const info = {name: NAME, layers: 1, files, uncompressedBytes: bytes, compressedBytes: layer.size, packages: versions, mirror, built: new Date().toISOString()}
    writeFileSync(join(image, 'bench-image.json'), `${JSON.stringify(info, null, 2)}\n`)
    rmSync(layout, {recursive: true, force: true})
    await rename(image, layout)
    log(`  ${NAME}: ${files} files, ${(bytes / 1e6).toFixed(0)} MB tar, ${(layer.size / 1e6).toFixed(0)} MB gzip, in ${((Date.now() - t0) / 1000).toFixed(0)} s; cached in ${layout}`)
    return {layout, info, cached: false}
  } finally {
    unmountBelow(build)
    rmSync(build, {recursive: true, force: true})
  }
}

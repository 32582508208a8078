// podman as /work/shared/docs/test-environment.md says these machines need it: a
// containers.conf of our own through CONTAINERS_CONF (runc, cgroupfs, ulimits podman
// may set), and an isolated store (--root/--runroot in the bench's directory), never
// the machine's own files.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

const CONTAINERS_CONF = `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`

/** Write the containers.conf into `dir`: the environment podman is run with. */
export function podmanEnv(dir) {
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'containers.conf'), CONTAINERS_CONF)
  return {CONTAINERS_CONF: join(dir, 'containers.conf')}
}

/** `podman` with its store in `dir` (storage/ and run/). */
export function podmanArgv(dir, ...args) {
  return ['podman', '--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), ...args]
}

/**
 * What a user may give `publish` as an image: every source skopeo accepts. A bare
 * reference (`ubuntu:22.04`, `127.0.0.1:5000/x:1`) means a registry image, as for
 * podman. For sources that carry no registry name (OCI layouts and archives), the
 * name the image gets in the repository comes from `--name`.
 */
import {UsageError} from '../errors.js'
import {layoutName, parseReference, type ImageReference} from '../reference/reference.js'

/** skopeo transports we pass through. `docker` is the registry. */
const TRANSPORTS = ['docker', 'oci', 'oci-archive', 'docker-archive', 'dir', 'containers-storage', 'docker-daemon'] as const
export type Transport = (typeof TRANSPORTS)[number]

export interface ImageSource {
  /** As the user wrote it. */
  input: string
  transport: Transport
  /** What skopeo is given, e.g. `docker://127.0.0.1:5000/x:1` or `oci:/tmp/layout:1`. */
  skopeoRef: string
  /** The name the image is published under: the registry reference, or `--name`. */
  reference: ImageReference
  /** For registry sources: where the image is fetched from. */
  registryRef?: ImageReference
  /** The public link name in the repository (DUCC form). */
  name: string
}

/** Split `transport:rest`, only for transports skopeo knows (a `host:port/…` is not one). */
function splitTransport(input: string): [Transport | undefined, string] {
  const colon = input.indexOf(':')
  if (colon > 0) {
    const prefix = input.slice(0, colon)
    if ((TRANSPORTS as readonly string[]).includes(prefix)) {
      const rest = input.slice(colon + 1)
      return [prefix as Transport, prefix === 'docker' ? rest.replace(/^\/\//, '') : rest]
    }
  }
  return [undefined, input]
}

/**
 * Parse a publish source. `name` is `--name` (required for sources without a
 * registry name, optional otherwise: it renames the image in the repository).
 */
export function parseSource(input: string, name?: string): ImageSource {
  const [transport, rest] = splitTransport(input.trim())
  if (transport === undefined || transport === 'docker') {
    const reference = parseReference(rest)
    const published = name ? parseReference(name) : reference
    const registryRef = `docker://${rest}`
    return {input, transport: 'docker', skopeoRef: registryRef, reference: published, registryRef: reference, name: layoutName(published)}
  }
  let reference: ImageReference | undefined
  if (name) reference = parseReference(name)
  else if (transport === 'docker-archive' || transport === 'docker-daemon' || transport === 'containers-storage') {
    // These carry a docker reference after the path (docker-archive:FILE:name:tag).
    const ref = transport === 'docker-archive' ? rest.split(':').slice(1).join(':') : rest
    if (ref) reference = parseReference(ref)
  }
  if (!reference) {
    throw new UsageError(`${input}: this source has no registry name to publish the image under`, {
      code: 'E_NEED_NAME',
      hint: 'Give one with --name, e.g. --name registry.example.org/group/image:1.0',
    })
  }
  if (!rest) throw new UsageError(`${input}: the ${transport} source needs a path`, {code: 'E_BAD_SOURCE'})
  return {input, transport, skopeoRef: `${transport}:${rest}`, reference, name: layoutName(reference)}
}

/**
 * The registry flags of publish and sync, spelt as podman and skopeo spell them.
 */
import type {RegistryOptions} from '../fetch/skopeo.js'
import {flag} from './spec.js'

export const registryFlags = {
  'tls-verify': flag.string({description: 'Require HTTPS and verify certificates when talking to the registry (default true).', options: ['true', 'false']}),
  creds: flag.string({description: 'Credentials USERNAME[:PASSWORD] for the registry.'}),
  authfile: flag.string({description: "Path of the authentication file (default: podman's, ${XDG_RUNTIME_DIR}/containers/auth.json)."}),
  'cert-dir': flag.string({description: 'Use certificates at PATH (*.crt, *.cert, *.key) to connect to the registry.'}),
}

/** The parsed registry flags, as the core's options. */
export function registryOptions(flags: {'tls-verify'?: string; creds?: string; authfile?: string; 'cert-dir'?: string}): RegistryOptions {
  return {
    tlsVerify: flags['tls-verify'] === undefined ? undefined : flags['tls-verify'] === 'true',
    creds: flags.creds,
    authfile: flags.authfile,
    certDir: flags['cert-dir'],
  }
}

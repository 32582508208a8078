/**
 * OCI ChainIDs: the identity of a stack of layers. ChainID(L0) = DiffID(L0);
 * ChainID(L0…Ln) = sha256(ChainID(L0…Ln-1) + " " + DiffID(Ln)). Two images whose
 * first k layers have the same ChainID have the same merged tree after k layers.
 */
import {crypto} from '../builtins.js'

/** The ChainID of every prefix: result[i] names layers 0…i. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = []
  for (const diffId of diffIds) {
    const previous = out[out.length - 1]
    out.push(previous === undefined ? diffId : `sha256:${crypto().createHash('sha256').update(`${previous} ${diffId}`).digest('hex')}`)
  }
  return out
}

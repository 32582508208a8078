/**
 * PLACEHOLDER (being replaced by the podman additional image store work, issue 5):
 * keeps `<root>/podmanStore` in step with the published images. Publish, rm and gc
 * call this inside their repository change; it writes nothing yet.
 */
import type {ImageRecord} from '../layout/write.js'
import type {Logger} from '../log.js'

export interface StoreChange {
  /** Names published or re-pointed in this change (their records are already written). */
  add?: ImageRecord[]
  /** Public names removed in this change. */
  remove?: string[]
}

export async function updatePodmanStore(_root: string, _change: StoreChange, _logger: Logger): Promise<void> {}

/**
 * When gc first saw each unreferenced path, kept outside the repository (in the
 * backend's state directory), so the grace period counts from the moment a flat root
 * lost its last link, not from when it was published: a root published a year ago and
 * unlinked today still waits the whole grace period for the containers running it.
 */
import {join} from 'node:path'

import {readFile} from '../fs-calls.js'
import {rm} from '../fs-promises.js'
import {writeFileAtomic} from '../layout/write.js'

const MARKS_FILE = 'gc-marks.json'

/** Path (relative to the repository root) → ISO date first seen unreferenced. */
export type Marks = Map<string, string>

export async function readMarks(stateDir: string): Promise<Marks> {
  try {
    const json = JSON.parse(await readFile(join(stateDir, MARKS_FILE), 'utf8')) as {unreferencedSince?: Record<string, string>}
    return new Map(Object.entries(json.unreferencedSince ?? {}).filter(([, date]) => !Number.isNaN(Date.parse(date))))
  } catch {
    return new Map() // none yet, or unreadable: every clock starts now, which only delays deletion
  }
}

export async function writeMarks(stateDir: string, marks: Marks): Promise<void> {
  // Nothing pending: no file (a directory repository keeps no bookkeeping then).
  if (marks.size === 0) return rm(join(stateDir, MARKS_FILE), {force: true})
  await writeFileAtomic(join(stateDir, MARKS_FILE), `${JSON.stringify({unreferencedSince: Object.fromEntries([...marks].sort())}, null, 2)}\n`)
}

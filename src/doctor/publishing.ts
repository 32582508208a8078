/**
 * What publishing needs beyond cvmfs-oci: skopeo fetches images, setfattr (attr) writes
 * extended attributes, flock (util-linux) takes the repository lock. Worker nodes that
 * only run images need none of them, so a missing one is a warning, never a problem.
 */
import {ExternalError} from '../errors.js'
import {run} from '../exec.js'
import type {Logger} from '../log.js'
import type {Finding} from './report.js'

const TOOLS = [
  {program: 'skopeo', args: ['--version'], install: 'dnf install skopeo', why: 'publish fetches images with it'},
  {program: 'setfattr', args: ['--version'], install: 'dnf install attr', why: 'publish writes extended attributes with it'},
  {program: 'flock', args: ['--version'], install: 'dnf install util-linux', why: 'publish, sync, rm and gc take the repository lock with it'},
] as const

export async function checkPublishingTools(logger?: Logger): Promise<Finding[]> {
  const findings: Finding[] = []
  for (const tool of TOOLS) {
    try {
      const {stdout} = await run(tool.program, tool.args, {logger})
      findings.push({check: 'publishing', status: 'ok', message: stdout.trim().split('\n')[0] ?? tool.program})
    } catch (error) {
      if (!(error instanceof ExternalError)) throw error
      findings.push({
        check: 'publishing',
        status: 'warning',
        message: error.code === 'E_MISSING_PROGRAM' ? `${tool.program} is not installed: ${tool.why} (only publishers need it)` : `${tool.program} does not run: ${error.message}`,
        fix: tool.install,
      })
    }
  }
  return findings
}

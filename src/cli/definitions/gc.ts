import {callSynchronouslyWhileFast} from '../../fs-calls.js'
import {parseDuration} from '../../gc/duration.js'
import {gcCommand} from '../../gc/gc-command.js'
import {repositoryFlags, targetFlags} from '../repository-flags.js'
import {defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: 'Delete flat roots, metadata and layers nothing references any more.',
  description: `Deletes flat roots no public link (or DUCC .multiarch link) points to, metadata of names whose link is gone, our records and manifest/config blobs nothing references, and DUCC .layers no manifest lists — once they have been unreferenced for the grace period (counted from the first gc run that found them so; kept in the state directory). Deletions go in batches, one repository change (cvmfs_server transaction) each; the podman store drops the layers of deleted flat roots in the same change.

Run it from cron or a systemd timer after sync; --dry-run reports what would be freed and changes nothing.`,
  examples: ['<%= config.bin %> gc --repo unpacked.example.org --dry-run', '<%= config.bin %> gc --repo unpacked.example.org --grace-period 2d --timestamps'],
  enableJsonFlag: true,
  flags: {
    ...repositoryFlags,
    'grace-period': flag.string({description: 'Keep what became unreferenced less than this long ago: 90s, 36h, 7d, 1d12h; 0 for none.', default: '7d'}),
    'dry-run': flag.boolean({description: 'Report what would be deleted; change nothing (no lock taken, no marks written).'}),
    'batch-size': flag.integer({description: 'Paths deleted per repository change (transaction).', default: 100, min: 1}),
  },
  async run({flags}) {
    callSynchronouslyWhileFast()
    return gcCommand({
      ...targetFlags(flags),
      gracePeriodMs: parseDuration(flags['grace-period']),
      dryRun: flags['dry-run'],
      batchSize: flags['batch-size'],
      logger: loggerFor(flags),
    })
  },
})

import {callSynchronouslyWhileFast} from '../../fs-calls.js'
import {rmCommand} from '../../remove/rm-command.js'
import {repositoryFlags, targetFlags} from '../repository-flags.js'
import {arg, defineCommand, flag, loggerFor} from '../spec.js'

export default defineCommand({
  summary: 'Remove published images: their public links, metadata and podman store names.',
  description: `IMAGE is a reference as for podman (ubuntu:22.04, registry.example.org/sci/app:2). All the images go in one repository change (one cvmfs_server transaction with --repo). Flat roots stay, for containers still running them and for other names of the same image: \`cvmfs-oci gc\` deletes the ones no link points to.

Exit code 3 when an image is not published (the others are removed all the same), unless --ignore.`,
  examples: ['<%= config.bin %> rm --repo unpacked.example.org registry.example.org/sci/app:1 registry.example.org/sci/app:2', '<%= config.bin %> rm --root /srv/repo --ignore alpine:3.19'],
  strict: false,
  enableJsonFlag: true,
  args: {image: arg({description: 'image(s) to remove', required: true})},
  flags: {
    ...repositoryFlags,
    ignore: flag.boolean({char: 'i', description: 'An image that is not published is not an error (as podman rmi --ignore).'}),
  },
  async run({argv, flags}, io) {
    callSynchronouslyWhileFast()
    const {failure, ...result} = await rmCommand({images: argv, ignore: flags.ignore, ...targetFlags(flags), logger: loggerFor(flags)})
    if (failure) {
      if (!io.jsonEnabled()) io.error(failure.display(), {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return result
  },
})

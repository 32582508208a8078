import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {repositoryFlags, targetFlags} from '../cli/repository-flags.js'
import {rmCommand} from '../remove/rm-command.js'

export default class Rm extends BaseCommand {
  static summary = 'Remove published images: their public links, metadata and podman store names.'
  static description = `IMAGE is a reference as for podman (ubuntu:22.04, registry.example.org/sci/app:2). All the images go in one repository change (one cvmfs_server transaction with --repo). Flat roots stay, for containers still running them and for other names of the same image: \`cvmfs-oci gc\` deletes the ones no link points to.

Exit code 3 when an image is not published (the others are removed all the same), unless --ignore.`
  static examples = ['<%= config.bin %> rm --repo unpacked.example.org registry.example.org/sci/app:1 registry.example.org/sci/app:2', '<%= config.bin %> rm --root /srv/repo --ignore alpine:3.19']
  static strict = false
  static enableJsonFlag = true
  static args = {image: Args.string({description: 'image(s) to remove', required: true})}
  static flags = {
    ...repositoryFlags,
    ignore: Flags.boolean({char: 'i', description: 'An image that is not published is not an error (as podman rmi --ignore).'}),
  }

  async run(): Promise<unknown> {
    const {argv, flags} = await this.parse(Rm)
    const {failure, ...result} = await rmCommand({images: argv as string[], ignore: flags.ignore, ...targetFlags(flags), logger: this.makeLogger(flags)})
    if (failure) {
      if (!this.jsonEnabled()) this.error(failure.display(), {exit: failure.exitCode, code: failure.code})
      process.exitCode = failure.exitCode
    }
    return result
  }
}

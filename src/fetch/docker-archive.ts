/**
 * A `docker save` archive names its images in its own manifest.json (RepoTags);
 * skopeo does not report them, so read them here to give `publish
 * docker-archive:FILE` the name the archive was saved under.
 */
import {createReadStream} from 'node:fs'
import {pipeline} from 'node:stream/promises'

import {UsageError} from '../errors.js'
import {createTarExtract} from '../unpack/tar-reader.js'

/** The RepoTags of every image in a docker-archive tar (empty if it names none). */
export async function archiveRepoTags(path: string): Promise<string[]> {
  const extract = createTarExtract()
  const piping = pipeline(createReadStream(path), extract as unknown as NodeJS.WritableStream)
  piping.catch(() => {})
  let manifest: Buffer | undefined
  for await (const entry of extract) {
    const chunks: Buffer[] = []
    for await (const chunk of entry) if (entry.header.name === 'manifest.json') chunks.push(chunk as Buffer)
    if (entry.header.name === 'manifest.json') manifest = Buffer.concat(chunks)
  }
  await piping
  if (!manifest) throw new UsageError(`${path} is not a docker-archive (it has no manifest.json)`, {code: 'E_BAD_SOURCE'})
  const images = JSON.parse(manifest.toString('utf8')) as {RepoTags?: string[] | null}[]
  return images.flatMap((image) => image.RepoTags ?? [])
}

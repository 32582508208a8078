/**
 * A `docker save` archive names its images in its own manifest.json (RepoTags);
 * skopeo does not report them, so read them here to give `publish
 * docker-archive:FILE` the name the archive was saved under.
 */
import {createReadStream} from 'node:fs'

import {UsageError} from '../errors.js'
import {TarParser} from '../unpack/tar-parser.js'

/** The RepoTags of every image in a docker-archive tar (empty if it names none). */
export async function archiveRepoTags(path: string): Promise<string[]> {
  const parser = new TarParser()
  let manifest: Buffer | undefined
  let chunks: Buffer[] | undefined
  for await (const chunk of createReadStream(path, {highWaterMark: 1 << 20})) {
    parser.push(chunk as Buffer)
    for (let event = parser.next(); event; event = parser.next()) {
      if (event.kind === 'header') chunks = event.header.name === 'manifest.json' ? [] : undefined
      else if (event.kind === 'data') chunks?.push(event.bytes)
      else if (chunks) manifest = Buffer.concat(chunks)
    }
  }
  parser.end()
  if (!manifest) throw new UsageError(`${path} is not a docker-archive (it has no manifest.json)`, {code: 'E_BAD_SOURCE'})
  const images = JSON.parse(manifest.toString('utf8')) as {RepoTags?: string[] | null}[]
  return images.flatMap((image) => image.RepoTags ?? [])
}

/** `cvmfs-oci list` as a function, and its table for people. */
import {join} from 'node:path'

import {stat} from '../fs-calls.js'
import {formatBytes} from '../log.js'
import {listImages, type ListedImage} from './list.js'
import {cvmfsMount, DEFAULT_CONFIG_PATH, readConfig, searchRoots} from './roots.js'

export interface Listing {
  roots: {root: string; images: ListedImage[]}[]
}

export async function listCommand(options: {roots?: string[]; repos?: string[]; configPath?: string}): Promise<Listing> {
  // With --root or --repo, only those; otherwise every configured root that exists.
  if (options.repos?.length) {
    const mount = cvmfsMount(readConfig(options.configPath ?? process.env.CVMFS_OCI_CONFIG ?? DEFAULT_CONFIG_PATH))
    options = {...options, roots: [...(options.roots ?? []), ...options.repos.map((name) => join(mount, name))]}
  }
  const roots = options.roots?.length ? options.roots : searchRoots({env: process.env, configPath: options.configPath})
  const listing: Listing = {roots: []}
  for (const root of roots) {
    const exists = await stat(root).then((s) => s.isDirectory(), () => false)
    if (!exists && !options.roots?.length) continue
    listing.roots.push({root, images: exists ? await listImages(root) : []})
  }
  return listing
}

export function formatListing(listing: Listing): string {
  const lines: string[] = []
  for (const {root, images} of listing.roots) {
    lines.push(`${root}: ${images.length} image(s)`)
    // A name published for several platforms: one row per platform.
    const rows = images.flatMap((image) => (image.platforms ?? [image]).map((entry) => [
      image.reference,
      entry.configDigest ? entry.configDigest.slice(7, 19) : '-',
      entry.size === undefined ? '-' : `${formatBytes(entry.size)}${entry.sizeKind === 'compressed' ? ' (compressed)' : ''}`,
      entry.date ? entry.date.slice(0, 19).replace('T', ' ') : '-',
      entry.platform ?? '-',
    ]))
    const header = ['REFERENCE', 'IMAGE ID', 'SIZE', 'DATE', 'PLATFORM']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
    for (const row of [header, ...rows]) lines.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd())
  }
  return lines.join('\n')
}

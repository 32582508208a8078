/**
 * The tar parser of the merge: what it reads equals what tar-stream (the parser it
 * replaced) reads from the same bytes, however the bytes are cut into chunks; PAX
 * records are applied as Go's archive/tar applies them; broken archives fail with
 * the messages merge.ts turns into "not a valid tar archive".
 */
import {describe, expect, it} from 'vitest'
import tarStream from 'tar-stream'

import {TarFormatError, TarParser, entryXattrs, type TarHeader} from '../../src/unpack/tar-parser.js'
import {buildTar, fileCapability, paxHeaderEntry, paxRecord, ustarHeader, type TarEntry} from '../helpers/tar.js'

interface Parsed {
  header: TarHeader
  data: Buffer
}

/**
 * Parse `tar` fed in chunks of the sizes `cut` gives, in order. Each chunk is a copy
 * that is overwritten once its events were taken (as the layer reader reuses its
 * pieces), so whatever the parser kept without release() would show up as garbage.
 */
function parse(tar: Buffer, cut: (i: number) => number = () => tar.length): Parsed[] {
  const parser = new TarParser()
  const out: Parsed[] = []
  let current: {header: TarHeader; chunks: Buffer[]} | undefined
  const drain = () => {
    for (let event = parser.next(); event; event = parser.next()) {
      if (event.kind === 'header') {
        expect(current).toBeUndefined()
        current = {header: event.header, chunks: []}
      } else if (event.kind === 'data') current!.chunks.push(Buffer.from(event.bytes))
      else {
        out.push({header: current!.header, data: Buffer.concat(current!.chunks)})
        current = undefined
      }
    }
  }
  for (let offset = 0, i = 0; offset < tar.length; i++) {
    const n = Math.max(1, cut(i))
    const piece = Buffer.from(tar.subarray(offset, offset + n))
    parser.push(piece)
    offset += n
    drain()
    parser.release()
    piece.fill(0xee)
  }
  parser.end()
  expect(current).toBeUndefined()
  return out
}

/** What tar-stream reads from the same bytes. */
async function tarStreamParse(tar: Buffer): Promise<{header: tarStream.Header; data: Buffer}[]> {
  const extract = tarStream.extract()
  const out: {header: tarStream.Header; data: Buffer}[] = []
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk as Buffer)
      out.push({header: entry.header, data: Buffer.concat(chunks)})
    }
  })()
  extract.end(tar)
  await done
  return out
}

const LONG = `deep/${'d'.repeat(120)}/${'f'.repeat(160)}`
const ENTRIES: TarEntry[] = [
  {name: 'etc/', type: 'directory', mode: 0o755, mtime: new Date('2023-05-06T07:08:09Z')},
  {name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644, uid: 0, gid: 0},
  {name: 'etc/big', content: Buffer.alloc(70_000, 7), mode: 0o600, uid: 1000, gid: 100},
  {name: 'etc/empty', content: ''},
  {name: 'usr/bin/su', content: 'x', mode: 0o4755},
  {name: 'usr/bin/sh', type: 'symlink', linkname: '/bin/busybox'},
  {name: 'usr/bin/su2', type: 'link', linkname: 'usr/bin/su'},
  {name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666},
  {name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0},
  {name: 'run/fifo', type: 'fifo'},
  {name: LONG, content: 'long\n'},
  {name: 'données/naïve-文件 ü.txt', content: 'unicode\n'},
  {name: 'caps/ping', content: 'ping', xattrs: {'security.capability': fileCapability(['cap_net_raw', 'e']), 'user.note': Buffer.from('hé')}},
  {name: 'link-to-long', type: 'symlink', linkname: `/${'l'.repeat(150)}`},
  {name: 'etc/.wh..wh..opq', content: ''},
]

describe('the tar parser', () => {
  it('reads what tar-stream reads, in one piece and in chunks of any size', async () => {
    const tar = await buildTar(ENTRIES)
    const theirs = await tarStreamParse(tar)
    const whole = parse(tar)
    expect(whole.map((e) => e.header.name)).toEqual(theirs.map((e) => e.header.name))
    for (const [i, {header, data}] of whole.entries()) {
      const their = theirs[i]!
      expect(data.equals(their.data), header.name).toBe(true)
      expect({name: header.name, type: header.type, mode: header.mode, uid: header.uid, gid: header.gid, size: header.size, linkname: header.linkname, devmajor: header.devmajor, devminor: header.devminor}).toEqual({
        name: their.header.name,
        type: their.header.type,
        mode: their.header.mode,
        uid: their.header.uid,
        gid: their.header.gid,
        size: their.header.size,
        linkname: their.header.linkname,
        devmajor: their.header.devmajor,
        devminor: their.header.devminor,
      })
      expect(header.mtime).toBe(their.header.mtime!.getTime() / 1000)
    }
    let seed = 12345
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 1500
    for (const cut of [() => 1, () => 511, () => 513, random]) expect(parse(tar, cut)).toEqual(whole)
  })

  it('keeps binary xattr values byte for byte', async () => {
    const [entry] = parse(await buildTar([ENTRIES[12]!]))
    expect(entryXattrs(entry!.header)).toEqual(
      new Map([
        ['security.capability', fileCapability(['cap_net_raw', 'e'])],
        ['user.note', Buffer.from('hé')],
      ]),
    )
  })

  it('applies PAX uid, gid, mtime and size as Go does; a global header changes nothing', async () => {
    const data = Buffer.from('payload\n')
    const pax = paxHeaderEntry([paxRecord('uid', '5000000'), paxRecord('gid', '4000000'), paxRecord('mtime', '1700000000.25'), paxRecord('uname', 'ünï')])
    const global = paxHeaderEntry([paxRecord('comment', 'made by git archive'), paxRecord('uid', '7')])
    global.write('g', 156) // typeflag of the header block
    rechecksum(global.subarray(0, 512))
    const file = ustarHeader({name: 'f', typeflag: '0', size: data.length})
    const tar = Buffer.concat([global, pax, file, data, Buffer.alloc(512 - data.length), ustarHeader({name: 'g', typeflag: '0', size: 0}), Buffer.alloc(1024)])
    const [f, g] = parse(tar)
    expect(f!.header).toMatchObject({name: 'f', uid: 5000000, gid: 4000000, mtime: 1700000000.25, uname: 'ünï', size: data.length})
    expect(f!.data.toString()).toBe('payload\n')
    expect(g!.header).toMatchObject({name: 'g', uid: 0, pax: null})
  })

  it('reads GNU long names and base-256 numbers', () => {
    const name = `gnu/${'n'.repeat(200)}`
    const longName = Buffer.concat([Buffer.from(name), Buffer.from([0])])
    const gnu = (block: Buffer) => {
      block.write('ustar  \0', 257, 'latin1')
      return rechecksum(block)
    }
    const header = gnu(ustarHeader({name: 'placeholder', typeflag: '0', size: 3}))
    // uid 2^40 in base-256
    header.fill(0, 108, 116)
    header[108] = 0x80
    header[110] = 1
    gnu(header)
    const tar = Buffer.concat([gnu(ustarHeader({name: '././@LongLink', typeflag: 'L', size: longName.length})), longName, Buffer.alloc(512 - longName.length), header, Buffer.from('abc'), Buffer.alloc(509), Buffer.alloc(1024)])
    const [entry] = parse(tar)
    expect(entry!.header).toMatchObject({name, uid: 2 ** 40, size: 3})
    expect(entry!.data.toString()).toBe('abc')
  })

  it('gives header-only entries no data, whatever their size field says (as Go)', () => {
    const link = ustarHeader({name: 'l', typeflag: '2', size: 600})
    const tar = Buffer.concat([link, ustarHeader({name: 'next', typeflag: '0', size: 0}), Buffer.alloc(1024)])
    expect(parse(tar).map((e) => [e.header.name, e.data.length])).toEqual([
      ['l', 0],
      ['next', 0],
    ])
  })

  it.each([
    ['a bad checksum', (tar: Buffer) => (tar[0] ^= 1), /Invalid tar header. Maybe the tar is corrupted/],
    ['no ustar magic', (tar: Buffer) => (tar.write('xxxxx', 257), rechecksum(tar.subarray(0, 512))), /unknown format/],
    ['random bytes', (tar: Buffer) => tar.fill(0x41, 0, 512), /Invalid tar header/],
  ])('refuses %s', async (_what, damage, message) => {
    const tar = await buildTar([{name: 'a', content: 'x'}])
    damage(tar)
    expect(() => parse(tar)).toThrow(message)
    expect(() => parse(tar)).toThrow(TarFormatError)
  })

  it('refuses an archive that stops inside an entry', async () => {
    const tar = await buildTar([{name: 'a', content: 'x'.repeat(1000)}])
    for (const end of [100, 512, 900, 1024 + 100]) {
      expect(() => parse(tar.subarray(0, end)), `cut at ${end}`).toThrow(/Unexpected end of data/)
    }
    // Without the end-of-archive blocks it is complete.
    expect(parse(tar.subarray(0, 1536)).map((e) => e.header.name)).toEqual(['a'])
  })
})

/** Rewrite the checksum of a header block after changing it. */
function rechecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += block[i]!
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  return block
}

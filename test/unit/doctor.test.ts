/**
 * The doctor's pure parts: what a podman version supports, where podman's configuration
 * says hooks and image stores are, Node.js ranges, and how findings add up to a report.
 */
import {describe, expect, it} from 'vitest'

import {additionalImageStores, DEFAULT_SOURCE, hooksDirsFrom, parseToml} from '../../src/doctor/containers-config.js'
import {checkRunningNode, nodeSatisfies} from '../../src/doctor/node.js'
import {assessPodman, parsePodmanVersion, PODMAN_FEATURES} from '../../src/doctor/podman.js'
import {formatReport, makeReport, type Finding} from '../../src/doctor/report.js'
import {DEFAULT_HOOKS_DIRS} from '../../src/hook/hook-file.js'

describe('podman versions', () => {
  it.each([
    ['podman version 4.3.1\n', '4.3.1'],
    ['podman version 4.9.4-rhel\n', '4.9.4-rhel'],
    ['podman version 5.2.0-dev', '5.2.0-dev'],
    ['something else', undefined],
  ])('reads %j as %j', (output, version) => {
    expect(parsePodmanVersion(output)).toBe(version)
  })

  it('knows the first release of each feature it relies on', () => {
    expect(PODMAN_FEATURES.map((f) => [f.feature, f.since])).toEqual([
      ['precreate hooks', '1.0.0'],
      ['--rootfs DIR:O', '3.4.0'],
    ])
  })

  it.each([
    ['4.3.1', []],
    ['3.4.0', []],
    ['4.9.4-rhel', []],
    ['3.3.1', ['--rootfs DIR:O']],
    ['3.0.1', ['--rootfs DIR:O']],
    ['0.12.1', ['precreate hooks', '--rootfs DIR:O']],
  ])('podman %s lacks %j', (version, lacking) => {
    const findings = assessPodman(version)
    const problems = findings.filter((f) => f.status === 'problem')
    expect(problems.map((f) => PODMAN_FEATURES.find((p) => f.message.includes(`too old for ${p.feature}`))?.feature)).toEqual(lacking)
    for (const problem of problems) {
      expect(problem.message).toContain(`podman ${version}`)
      expect(problem.fix).toMatch(/^upgrade podman/)
    }
    if (lacking.length === 0) expect(findings).toEqual([expect.objectContaining({status: 'ok'})])
  })

  it('says it cannot tell for a version it cannot read', () => {
    expect(assessPodman('banana')).toEqual([expect.objectContaining({status: 'warning'})])
  })
})

describe("podman's configuration", () => {
  const parsed = (path: string, text: string) => {
    const result = parseToml({path, text})
    if ('error' in result) throw new Error(result.error)
    return {path, value: result.value}
  }

  it("uses podman's default hooks directories when no file sets hooks_dir", () => {
    expect(hooksDirsFrom([])).toEqual({dirs: DEFAULT_HOOKS_DIRS, from: DEFAULT_SOURCE})
    expect(hooksDirsFrom([parsed('/a.conf', '[engine]\nruntime = "runc"\n')])).toEqual({dirs: DEFAULT_HOOKS_DIRS, from: DEFAULT_SOURCE})
  })

  it('takes hooks_dir from the last file that sets it', () => {
    const files = [
      parsed('/usr/share/containers/containers.conf', '[engine]\nhooks_dir = ["/one"]\n'),
      parsed('/etc/containers/containers.conf', '# mine\n[engine]\nhooks_dir = ["/two", "/three"]\n'),
      parsed('/etc/containers/containers.conf.d/x.conf', '[containers]\nnetns = "none"\n'),
    ]
    expect(hooksDirsFrom(files)).toEqual({dirs: ['/two', '/three'], from: '/etc/containers/containers.conf'})
  })

  it('reads additionalimagestores of [storage.options]', () => {
    const text = '[storage]\ndriver = "overlay"\n\n[storage.options]\n# comment\nadditionalimagestores = [\n  "/cvmfs/a/podmanStore",\n  "/cvmfs/b/podmanStore",\n]\n'
    expect(additionalImageStores(parsed('s.conf', text).value)).toEqual(['/cvmfs/a/podmanStore', '/cvmfs/b/podmanStore'])
    expect(additionalImageStores(parsed('s.conf', '[storage]\ndriver = "overlay"\n').value)).toEqual([])
  })

  it('names what is wrong with a file that is not TOML', () => {
    expect(parseToml({path: 'x', text: '[storage\n'})).toEqual({error: expect.stringMatching(/TOML/)})
  })
})

describe('Node.js versions', () => {
  it.each([
    ['v20.0.0', '>=20', true],
    ['v22.11.0', '>=20', true],
    ['v18.20.4', '>=20', false],
    ['20.20.2', '>=20', true],
    ['not a version', '>=20', false],
  ])('%s satisfies %s: %s', (version, range, expected) => {
    expect(nodeSatisfies(version, range)).toBe(expected)
  })

  it('a Node.js too old for cvmfs-oci is a problem with a fix', () => {
    expect(checkRunningNode('v18.20.4', '>=20', '/usr/bin/node')).toEqual({
      check: 'node',
      status: 'problem',
      message: expect.stringContaining('Node.js v18.20.4 at /usr/bin/node is too old'),
      fix: expect.stringContaining('>=20'),
    })
  })
})

describe('the report', () => {
  const findings: Finding[] = [
    {check: 'storage', status: 'warning', message: 'store not listed', fix: 'list it'},
    {check: 'node', status: 'ok', message: 'Node.js fine'},
    {check: 'hooks', status: 'problem', message: 'bad hook file', fix: 'remove it'},
    {check: 'hooks', status: 'ok', message: 'our hook fine', fix: 'never shown'},
  ]

  it('is not ok when anything is a problem, and counts problems and warnings', () => {
    const report = makeReport(findings)
    expect(report).toMatchObject({ok: false, problems: 1, warnings: 1})
    expect(report.findings.map((f) => f.message)).toEqual(['Node.js fine', 'bad hook file', 'our hook fine', 'store not listed'])
    expect(makeReport(findings.filter((f) => f.status !== 'problem'))).toMatchObject({ok: true, problems: 0, warnings: 1})
  })

  it('shows each finding with its status, area and fix, and sums up', () => {
    const text = formatReport(makeReport(findings))
    expect(text).toMatch(/^problem +OCI hooks +bad hook file\n +fix: remove it$/m)
    expect(text).toMatch(/^warning +storage\.conf +store not listed\n +fix: list it$/m)
    expect(text).not.toContain('never shown')
    expect(text.trimEnd().split('\n').at(-1)).toBe('1 problem, 1 warning: this node cannot run cvmfs-oci images as it should')
    expect(formatReport(makeReport([findings[1]!])).trimEnd().split('\n').at(-1)).toBe('everything looks right')
  })
})

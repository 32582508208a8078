/**
 * What `cvmfs-oci doctor` finds and how it is shown. Pure: the checks that look at the
 * node are in the other files of src/doctor/.
 */

/** ok: nothing to do; warning: works, but something is missing or odd; problem: broken, fix it. */
export type Status = 'ok' | 'warning' | 'problem'

/** The areas the doctor looks at, in the order they are shown. */
export const CHECKS = ['node', 'podman', 'hooks', 'config', 'repositories', 'storage', 'publishing'] as const
export type CheckId = (typeof CHECKS)[number]

export const CHECK_TITLES: Record<CheckId, string> = {
  node: 'Node.js',
  podman: 'podman',
  hooks: 'OCI hooks',
  config: 'configuration',
  repositories: 'repositories',
  storage: 'storage.conf',
  publishing: 'publishing tools',
}

export interface Finding {
  check: CheckId
  status: Status
  /** What was found, one line. */
  message: string
  /** What to do about it (warnings and problems). */
  fix?: string
}

export interface DoctorReport {
  /** True when nothing is a problem (warnings allowed). */
  ok: boolean
  problems: number
  warnings: number
  findings: Finding[]
}

export function makeReport(findings: Finding[]): DoctorReport {
  const order = (f: Finding) => CHECKS.indexOf(f.check)
  // A stable sort keeps each check's findings in the order they were made.
  const sorted = [...findings].sort((a, b) => order(a) - order(b))
  const problems = sorted.filter((f) => f.status === 'problem').length
  const warnings = sorted.filter((f) => f.status === 'warning').length
  return {ok: problems === 0, problems, warnings, findings: sorted}
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** The report as a person reads it: one line per finding, the fix indented below, a summary last. */
export function formatReport(report: DoctorReport): string {
  const lines: string[] = []
  const width = Math.max(...Object.values(CHECK_TITLES).map((t) => t.length))
  for (const finding of report.findings) {
    const head = `${finding.status.padEnd(8)} ${CHECK_TITLES[finding.check].padEnd(width)}  `
    lines.push(`${head}${finding.message}`)
    if (finding.fix && finding.status !== 'ok') lines.push(`${' '.repeat(head.length)}fix: ${finding.fix}`)
  }
  const summary = report.problems + report.warnings === 0 ? 'everything looks right' : `${plural(report.problems, 'problem')}, ${plural(report.warnings, 'warning')}`
  lines.push('', report.ok ? `${summary}` : `${summary}: this node cannot run cvmfs-oci images as it should`)
  return lines.join('\n')
}

/**
 * The OCI hooks podman reads on this node: ours installed, pointing at a node and a hook
 * program that run, and every other hook file readable — podman refuses to start any
 * container while one file in its hooks directories is invalid, and (seen with podman
 * 4.3.1) a precreate hook program that fails makes every container start fail too
 * ("setting up OCI Hooks: executing [node …]: exit status 1"), while a hook whose
 * `hook.path` is missing is skipped without a word. What podman does with each kind of
 * problem in a hook file is hook/hook-file.ts's verdict.
 */
import {basename} from 'node:path'

import {ExternalError} from '../errors.js'
import {run} from '../exec.js'
import {readFile, stat} from '../fs-promises.js'
import {decodeLikeGo, isObject} from '../hook/hook-decode.js'
import {checkHookFiles, FAILS_WHEN_RUN, type HookFileReport, type HookProblem} from '../hook/hook-file.js'
import {HOOK_FILE_NAME} from '../hook/install.js'
import type {Logger} from '../log.js'
import {DEFAULT_SOURCE, hooksDirsFrom, parseToml, readContainersConf, type Caller} from './containers-config.js'
import {nodeSatisfies} from './node.js'
import type {Finding} from './report.js'

export interface HooksOptions {
  /** `--hooks-dir` flags: these instead of what containers.conf says. */
  hooksDirs?: string[]
  caller: Caller
  /** Node.js versions the hook program runs on (`engines.node`). */
  nodeRange: string
  logger?: Logger
}

const INSTALL_FIX = 'cvmfs-oci hook install (or reinstall the cvmfs-oci RPM)'
/** An error's message, and what it stops (a hook that cannot run says which containers itself). */
const refusal = (file: string, p: HookProblem) => `${file}: ${p.message}${FAILS_WHEN_RUN.has(p.kind) ? '' : ': podman refuses to start any container while this file is there'}`

/**
 * A runtime config whose root is no published flat root: the hook must print it back
 * byte for byte, as it does for every container that is not ours.
 */
const PROBE_CONFIG = `${JSON.stringify({ociVersion: '1.0.2', process: {args: ['/bin/true'], cwd: '/', env: ['PATH=/bin']}, root: {path: '/nonexistent/cvmfs-oci-doctor-probe'}})}\n`

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false)
const isDir = (path: string) => stat(path).then((s) => s.isDirectory(), () => false)

/** Which hooks directories podman reads, and why. A containers.conf podman cannot parse is a problem of its own. */
async function hooksDirsInUse(options: HooksOptions): Promise<{dirs: string[]; from: string; findings: Finding[]}> {
  if (options.hooksDirs?.length) return {dirs: options.hooksDirs, from: '--hooks-dir', findings: []}
  const findings: Finding[] = []
  const parsed: {path: string; value: Record<string, unknown>}[] = []
  for (const file of await readContainersConf(options.caller)) {
    const result = parseToml(file)
    if ('error' in result) {
      findings.push({check: 'podman', status: 'problem', message: `${file.path} is not valid TOML (${result.error}): podman fails every command`, fix: `fix ${file.path}`})
    } else {
      parsed.push({path: file.path, value: result.value})
    }
  }
  return {...hooksDirsFrom(parsed), findings}
}

/** Other hook files: each error stops container starts, each warning only concerns that hook. */
function otherHookFindings(reports: HookFileReport[]): Finding[] {
  const findings: Finding[] = []
  for (const report of reports) {
    for (const problem of report.problems) {
      findings.push(
        problem.severity === 'error'
          ? {check: 'hooks', status: 'problem', message: refusal(report.file, problem), fix: `fix or remove ${report.file} (cvmfs-oci hook validate ${report.file} shows every problem)`}
          : {check: 'hooks', status: 'warning', message: `${report.file}: ${problem.message}`},
      )
    }
  }
  const clean = reports.filter((r) => r.problems.length === 0).length
  if (clean > 0) findings.push({check: 'hooks', status: 'ok', message: `${clean} other hook file${clean === 1 ? '' : 's'} valid`})
  return findings
}

/** Our hook file: podman would read it, it runs at precreate, its node and program run and pass a container's config through. */
async function ourHookFindings(report: HookFileReport, options: HooksOptions): Promise<Finding[]> {
  const file = report.file
  const errors = report.problems.filter((p) => p.severity === 'error')
  if (errors.length > 0) {
    return errors.map((p) => ({check: 'hooks' as const, status: 'problem' as const, message: refusal(file, p), fix: INSTALL_FIX}))
  }
  // A missing node is named below, with its own fix; any other reason podman skips the hook is named here.
  const skipped = report.problems.filter((p) => p.podman === 'skips' && p.kind !== 'missing-program')
  if (skipped.length > 0) {
    return skipped.map((p) => ({check: 'hooks' as const, status: 'problem' as const, message: `${file}: ${p.message}: --rootfs containers get podman's defaults`, fix: INSTALL_FIX}))
  }
  // As podman reads it (keys in any case); no error means a 1.0.0 file or a legacy one.
  const hook = decodeLikeGo(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>)
  const stages = Array.isArray(hook.stages) ? (hook.stages as string[]) : []
  const entry = isObject(hook.hook) ? (hook.hook as {path: string; args?: string[]}) : undefined
  if (!stages.includes('precreate') || entry === undefined) {
    return [{check: 'hooks', status: 'problem', message: `${file} does not run at the precreate stage: --rootfs containers get podman's defaults`, fix: INSTALL_FIX}]
  }
  const node = entry.path
  const program = entry.args?.[1]
  if (!(await isFile(node))) {
    return [{check: 'hooks', status: 'problem', message: `${file} names ${node}, which does not exist: podman skips the hook, --rootfs containers get podman's defaults`, fix: `install Node.js at ${node}, or ${INSTALL_FIX} to name this node's`}]
  }
  let version: string
  try {
    version = (await run(node, ['--version'], {logger: options.logger})).stdout.trim()
  } catch (error) {
    if (!(error instanceof ExternalError)) throw error
    return [{check: 'hooks', status: 'problem', message: `${file} names ${node}, which does not run: ${error.message}`, fix: `repair ${node}, or ${INSTALL_FIX}`}]
  }
  if (!nodeSatisfies(version, options.nodeRange)) {
    return [{check: 'hooks', status: 'problem', message: `${file} runs the hook with Node.js ${version} (${node}); it needs ${options.nodeRange}: where the hook fails, every container start fails`, fix: `install Node.js ${options.nodeRange}, or ${INSTALL_FIX} with --node`}]
  }
  if (program === undefined || !(await isFile(program))) {
    return [{check: 'hooks', status: 'problem', message: `${file} runs ${program ?? '(no program)'}, which does not exist: every container start fails`, fix: INSTALL_FIX}]
  }
  try {
    const result = await run(node, [program], {input: PROBE_CONFIG, logger: options.logger})
    if (result.stdout !== PROBE_CONFIG) {
      return [{check: 'hooks', status: 'problem', message: `the hook program ${program} changed a config it should pass through unchanged`, fix: INSTALL_FIX}]
    }
  } catch (error) {
    if (!(error instanceof ExternalError)) throw error
    return [{check: 'hooks', status: 'problem', message: `the hook program ${program} fails, so every container start fails: ${error.message}`, fix: INSTALL_FIX}]
  }
  const warnings = report.problems.map((p) => ({check: 'hooks' as const, status: 'warning' as const, message: `${file}: ${p.message}`}))
  return [{check: 'hooks', status: 'ok', message: `${file}: the cvmfs-oci hook (precreate) runs ${program} with Node.js ${version}`}, ...warnings]
}

export async function checkHooks(options: HooksOptions): Promise<Finding[]> {
  const {dirs, from, findings} = await hooksDirsInUse(options)
  const present: string[] = []
  for (const dir of dirs) {
    if (await isDir(dir)) present.push(dir)
    // podman skips missing hooks directories; only a directory named by hand is worth a word.
    else if (from === '--hooks-dir') findings.push({check: 'hooks', status: 'warning', message: `hooks directory ${dir} does not exist`})
  }
  const reports = await checkHookFiles(present)
  // podman reads the directories in order and a file overrides a same-named one read before it.
  const ours = reports.filter((r) => basename(r.file) === HOOK_FILE_NAME)
  const effective = ours.at(-1)
  const why = from === '--hooks-dir' ? 'given with --hooks-dir' : from === DEFAULT_SOURCE ? "podman's default hooks directories" : `hooks_dir of ${from}`
  const where = `${dirs.join(', ')} (${why})`
  if (!effective) {
    findings.push({check: 'hooks', status: 'problem', message: `the cvmfs-oci hook is not installed in ${where}: --rootfs containers get podman's defaults, not their image's Env, WorkingDir and User`, fix: INSTALL_FIX})
  } else {
    findings.push(...(await ourHookFindings(effective, options)))
    for (const shadowed of ours.slice(0, -1)) {
      findings.push({check: 'hooks', status: 'warning', message: `${effective.file} overrides ${shadowed.file}: of same-named hook files podman reads only the one in the later directory`, fix: 'remove the copy you do not want'})
    }
  }
  findings.push(...otherHookFindings(reports.filter((r) => basename(r.file) !== HOOK_FILE_NAME)))
  return findings
}

/**
 * `cvmfs-oci doctor`: look at a node and say what to fix. Each check returns findings
 * (ok / warning / problem, and what to do); the report is not ok when any is a problem.
 * Subprocesses run through src/exec.ts only.
 */
import {homedir} from 'node:os'
import {resolve} from 'node:path'

import type {Logger} from '../log.js'
import type {Caller} from './containers-config.js'
import {checkHooks} from './hooks.js'
import {checkRunningNode, requiredNodeRange} from './node.js'
import {checkPodman} from './podman.js'
import {checkPublishingTools} from './publishing.js'
import {makeReport, type DoctorReport} from './report.js'
import {checkRepositories} from './repositories.js'
import {checkStorage} from './storage.js'

export interface DoctorOptions {
  /** Hooks directories to look at instead of podman's (`--hooks-dir`). */
  hooksDirs?: string[]
  /** Repository roots to look at first (`--root`). */
  roots?: string[]
  /** Configuration file (`--config`). */
  configPath?: string
  env?: NodeJS.ProcessEnv
  logger?: Logger
}

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env
  const caller: Caller = {env, uid: process.getuid?.() ?? 0, home: env.HOME || homedir()}
  const nodeRange = await requiredNodeRange()
  const repositories = await checkRepositories({flagRoots: options.roots, env, configPath: options.configPath})
  const findings = [
    checkRunningNode(process.version, nodeRange, process.execPath),
    ...(await checkPodman(options.logger)),
    ...(await checkHooks({hooksDirs: options.hooksDirs?.map((dir) => resolve(dir)), caller, nodeRange, logger: options.logger})),
    ...repositories.findings,
    ...(await checkStorage(repositories.roots, caller)),
    ...(await checkPublishingTools(options.logger)),
  ]
  return makeReport(findings)
}

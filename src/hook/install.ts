/**
 * `cvmfs-oci hook install|uninstall`: write our hook file into a hooks directory
 * (podman's default /usr/share/containers/oci/hooks.d), pointing at the hook
 * program by absolute path, checked before it is written, written atomically —
 * a broken or half-written hook file would stop every container on the node.
 */
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {UserError} from '../errors.js'
import {readFile, rm, stat} from '../fs-promises.js'
import {writeFileAtomic} from '../layout/write.js'
import {checkHookContent, type HookProblem} from './hook-file.js'

export const HOOK_FILE_NAME = 'cvmfs-oci.json'
export const DEFAULT_HOOKS_DIR = '/usr/share/containers/oci/hooks.d'

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The template shipped in hooks/, also used by the RPM. */
export const HOOK_TEMPLATE = join(PACKAGE_ROOT, 'hooks', HOOK_FILE_NAME)
/** This installation's hook program. */
export const DEFAULT_HOOK_PROGRAM = join(PACKAGE_ROOT, 'bin', 'hook.js')

export interface InstallOptions {
  hooksDir?: string
  /** Absolute path of node (default: the one running now). */
  node?: string
  /** Absolute path of the hook program (default: this installation's bin/hook.js). */
  program?: string
}

/** The hook file's text for this node and program (placeholders replaced as JSON strings, so any path is safe). */
export async function renderHookFile(node: string, program: string): Promise<string> {
  const template = await readFile(HOOK_TEMPLATE, 'utf8')
  return template.replaceAll('"@NODE@"', JSON.stringify(node)).replaceAll('"@HOOK_PROGRAM@"', JSON.stringify(program))
}

/** Write hook file text into a hooks directory, atomically, unless podman would reject it. */
export async function writeHookFile(hooksDir: string, text: string): Promise<{file: string; problems: HookProblem[]}> {
  const problems = await checkHookContent(text)
  const errors = problems.filter((p) => p.severity === 'error')
  if (errors.length > 0) {
    throw new UserError(`refusing to install a hook file podman would reject:\n${errors.map((p) => `  ${p.message}`).join('\n')}`, {
      code: 'E_BAD_HOOK_FILE',
      hint: 'A hook file podman cannot read stops every container start on the node.',
    })
  }
  const file = join(hooksDir, HOOK_FILE_NAME)
  await writeFileAtomic(file, text)
  return {file, problems}
}

export async function installHook(options: InstallOptions): Promise<{file: string; problems: HookProblem[]}> {
  const hooksDir = resolve(options.hooksDir ?? DEFAULT_HOOKS_DIR)
  const node = resolve(options.node ?? process.execPath)
  const program = resolve(options.program ?? DEFAULT_HOOK_PROGRAM)
  if (!(await stat(program).then((s) => s.isFile(), () => false))) {
    throw new UserError(`hook program ${program} does not exist`, {code: 'E_NO_HOOK_PROGRAM', hint: 'Build cvmfs-oci first (npm run build), or pass --program.'})
  }
  return writeHookFile(hooksDir, await renderHookFile(node, program))
}

export async function uninstallHook(options: {hooksDir?: string}): Promise<{file: string; removed: boolean}> {
  const file = join(resolve(options.hooksDir ?? DEFAULT_HOOKS_DIR), HOOK_FILE_NAME)
  const existed = await stat(file).then(() => true, () => false)
  await rm(file, {force: true})
  return {file, removed: existed}
}

/**
 * The `cvmfs_server` command line as the CVMFS backends use it. How a CernVM-FS 2.12
 * stratum-0 answers each call (messages, exit codes) is recorded in
 * ../shared/docs/cvmfs-server.md; the answers that mean something to us are turned into
 * errors of our family here, everything else stays an ExternalError with the command
 * and the tail of its output.
 */
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {setTimeout as sleep} from 'node:timers/promises'

import {BugError, BusyError, ExternalError, UserError} from '../errors.js'
import {run, runSync} from '../exec.js'
import {readFile, stat} from '../fs-promises.js'
import type {Logger} from '../log.js'

const PROGRAM = 'cvmfs_server'
const MISSING =
  'cvmfs_server comes with the cvmfs-server package: run cvmfs-oci --repo on the stratum-0 of the repository, or on a publisher connected to its gateway (or publish into a directory with --root).'

/** `transaction` of a second transaction: "another transaction is already open". */
const EXIT_TRANSACTION_OPEN = 17
/** `transaction NAME/sub` when /sub does not exist. */
const EXIT_NO_SUCH_PATH = 2
/** `abort -f` outside a transaction. */
const EXIT_NOT_IN_TRANSACTION = 22

/** What cvmfs_server knows of one repository on this machine. */
export interface RepositoryStatus {
  /** A stratum-0 (or gateway publisher) configured here: cvmfs_server list names it. */
  listed: boolean
  /** A transaction is open (cvmfs_server list says "in transaction"). */
  inTransaction: boolean
}

/** `transaction NAME/sub` through a gateway when that path (or one overlapping it) is leased: EBUSY. */
const EXIT_LEASE_BUSY = 16

/** What `cvmfs_server transaction` answered. */
export type OpenResult =
  | {status: 'opened'}
  /** The server refuses the scope: its parent directory does not exist (yet). */
  | {status: 'no-such-path'}
  /** A gateway holds an overlapping lease: `detail` is its answer (`Path busy. Time remaining = …`). */
  | {status: 'busy'; detail: string}

/**
 * Open a transaction on `name`, scoped to `subpath` (relative, no leading slash) when
 * given. Through a gateway the scope is the lease path; only the parent of a scope must
 * exist. Never `transaction -t`: cvmfs_publish 2.12 then waits for a busy lease inside one
 * process, with the revision it read when it started, and a transaction based on a
 * revision older than the newest drops what others published since under its lease (seen
 * with the kit: see README.md, "Several publishers: the gateway"). The caller waits instead.
 *
 * @throws BusyError `E_TRANSACTION_OPEN` when a transaction is already open.
 */
export async function openTransaction(name: string, subpath: string | undefined, logger: Logger): Promise<OpenResult> {
  let answer
  try {
    answer = await server(['transaction', subpath ? `${name}/${subpath}` : name], logger, undefined, [EXIT_LEASE_BUSY])
  } catch (error) {
    if (!(error instanceof ExternalError)) throw error
    if (error.commandExitCode === EXIT_NO_SUCH_PATH && /non-existing path/i.test(error.stderrTail)) return {status: 'no-such-path'}
    if (error.commandExitCode === EXIT_TRANSACTION_OPEN || /transaction is already open/i.test(error.stderrTail)) throw transactionOpen(name, error)
    throw error
  }
  if (answer.exitCode === EXIT_LEASE_BUSY) {
    const output = `${answer.stdout}\n${answer.stderr}`
    if (!/lease path busy|Path busy/i.test(output)) {
      throw new ExternalError(`cvmfs_server transaction ${name}${subpath ? `/${subpath}` : ''} exited with code ${EXIT_LEASE_BUSY}`, {
        command: `cvmfs_server transaction ${name}`,
        exitCode: EXIT_LEASE_BUSY,
        stderrTail: output.trim(),
      })
    }
    return {status: 'busy', detail: /Path busy[^\n]*/.exec(output)?.[0]?.trim() ?? 'lease path busy'}
  }
  return {status: 'opened'}
}

/**
 * `cvmfs_server mount NAME`: its health check remounts a publisher's read-only view at the
 * newest published revision when it is behind (a gateway publisher's view can stay one
 * revision behind, even after its own publish). Outside a transaction only.
 */
export async function refreshMount(name: string, logger: Logger): Promise<void> {
  await server(['mount', name], logger)
}

/** `cvmfs_server publish NAME`: sign and remount the new revision. */
export async function publishTransaction(name: string, logger: Logger): Promise<void> {
  await whileFilesOpen(name, 'publish', logger, () => server(['publish', name], logger))
}

/**
 * Run `attempt` (a `cvmfs_server publish` or `ingest`), again while it is refused for
 * files open below /cvmfs/NAME ({@link openFilesRefusal}), for up to
 * {@link OPEN_FILES_TIMEOUT_MS}; then fail naming them.
 */
async function whileFilesOpen(name: string, verb: 'publish' | 'ingest', logger: Logger, attempt: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + OPEN_FILES_TIMEOUT_MS
  let delay: number = OPEN_FILES_RETRY_MS[0]
  for (let told = false; ; told = true) {
    try {
      await attempt()
      return
    } catch (error) {
      if (!(error instanceof ExternalError)) throw error
      const open = openFilesRefusal(error.stderrTail)
      if (!open) throw error
      if (Date.now() >= deadline) {
        throw new ExternalError(`cvmfs_server ${verb} ${name}: processes of this machine kept files below /cvmfs/${name} open ${open} for ${OPEN_FILES_TIMEOUT_MS / 1000} s (cvmfs_server's report below names them):\n${error.stderrTail}`, {
          command: error.command,
          exitCode: error.commandExitCode,
          stderrTail: error.stderrTail,
        }, {hint: `Close them (a shell or a container using /cvmfs/${name} on the publisher), then publish again; the change was not published.`})
      }
      const say = `cvmfs_server ${verb} ${name}: a process has files below /cvmfs/${name} open ${open}; waiting for it to close them${verb === 'publish' ? ' (the transaction stays open)' : ''}`
      if (told) logger.debug(say)
      else logger.info(say)
      await sleep(delay)
      delay = Math.min(delay * 2, OPEN_FILES_RETRY_MS[1])
    }
  }
}

/**
 * Whether `cvmfs_server publish` refused because files below /cvmfs/NAME are open, and
 * how ('for writing', 'for reading'). It refuses (exit 1, the transaction left open)
 * while any process of the machine has a file there open for writing ("Open writable file
 * descriptors on NAME"); one open for reading makes it ask whether to remount anyway,
 * which, with stdin at end-of-file (exec.ts), it answers itself: "(y/N) aborted.". Its
 * lsof sees every process, also another publisher's in its own mount namespace (several
 * publishers of one gateway on one machine, as in the tests).
 */
export function openFilesRefusal(output: string): 'for writing' | 'for reading' | undefined {
  if (/Open writable file descriptors/i.test(output)) return 'for writing'
  if (/Do you want to proceed anyway\? \(y\/N\) aborted\./.test(output)) return 'for reading'
  return undefined
}

/** Such files are waited for, up to this long, asking again after these delays. */
const OPEN_FILES_TIMEOUT_MS = 120_000
const OPEN_FILES_RETRY_MS = [250, 2000] as const

/** `cvmfs_server abort -f NAME`: discard the open transaction. */
export async function abortTransaction(name: string, logger: Logger): Promise<void> {
  await server(['abort', '-f', name], logger)
}

/**
 * abortTransaction for a signal handler; returns what went wrong, if anything ("not in a
 * transaction" is not: the signal came before the transaction opened).
 */
export function abortTransactionSync(name: string, logger: Logger): string | undefined {
  const result = runSync(PROGRAM, ['abort', '-f', name], {logger})
  if (result.exitCode === 0 || result.exitCode === EXIT_NOT_IN_TRANSACTION) return undefined
  return `cvmfs_server abort -f ${name} exited with code ${result.exitCode}: ${result.output}`
}

export interface IngestCall {
  /** Repository-relative paths to delete first (`-d`, repeatable on a stratum-0). */
  delete?: string[]
  /**
   * A tar stream to write below `base` (`-t - -b BASE`), made by `open` (again for each
   * attempt); nested catalogs come from `.cvmfscatalog` files in it.
   */
  tar?: {open: () => Readable; base: string}
  /** `-k`: keep the tar's owners (otherwise the repository owner's). */
  keepOwnership?: boolean
}

/**
 * `cvmfs_server ingest [-d PATH]… [-t - -b BASE] [-k] NAME`: its own publish.
 *
 * @throws BugError for a path to delete with a `:` in it: cvmfs_server joins the `-d` paths
 *   with `:` and cvmfs_swissknife splits them again, so such a path would silently stay.
 */
export async function ingest(name: string, call: IngestCall, logger: Logger): Promise<void> {
  const args = ['ingest']
  for (const path of call.delete ?? []) {
    if (path.includes(':')) throw new BugError(`cvmfs_server ingest -d cannot delete ${path}: it splits its paths at ':'`)
    args.push('-d', path)
  }
  if (call.tar) args.push('-t', '-', '-b', call.tar.base)
  if (call.keepOwnership) args.push('-k')
  args.push(name)
  await whileFilesOpen(name, 'ingest', logger, async () => {
    try {
      await server(args, logger, call.tar?.open())
    } catch (error) {
      if (error instanceof ExternalError && /transaction is already open/i.test(error.stderrTail)) throw transactionOpen(name, error)
      // Refused for open files, ingest leaves the transaction it opened: it was ours.
      if (error instanceof ExternalError && openFilesRefusal(error.stderrTail)) {
        await abortTransaction(name, logger).catch((abortError: unknown) => logger.debug(`after the refused ingest: ${(abortError as Error).message}`))
      }
      throw error
    }
  })
}

/** Where `cvmfs_server` keeps each repository's configuration (`NAME/server.conf`). */
export const REPOSITORIES_DIR = '/etc/cvmfs/repositories.d'

/** What cvmfs-oci reads from a repository's server.conf. */
export interface ServerConfig {
  /** `CVMFS_SPOOL_DIR`: the union mount's upper directory and the read-only mount are below it. */
  spoolDir: string
  /** `CVMFS_STRATUM0`: where the published manifest is served. */
  stratum0?: string
  /** The gateway's API URL, when the repository is published through one. */
  gatewayUrl?: string
}

/**
 * The server.conf of `name`, as cvmfs_server itself reads it to answer for a repository
 * (not `cvmfs_server list`: that reads every repository of the machine and asks each one's
 * stratum-0 for its whitelist over HTTP, seconds per repository — tens of seconds when one
 * is unreachable — and fails while another repository is being removed). Undefined when
 * this machine has no stratum-0 or gateway publisher of that name
 * (`CVMFS_REPOSITORY_TYPE=stratum0`).
 *
 * @throws UserError `E_PERMISSION` when the file is there but cannot be read.
 */
export async function readServerConfig(name: string, logger: Logger): Promise<ServerConfig | undefined> {
  const conf = join(REPOSITORIES_DIR, name, 'server.conf')
  let text: string
  try {
    text = await readFile(conf, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw new UserError(`cannot read ${conf}: ${(error as Error).message}`, {
      code: 'E_PERMISSION',
      hint: `Run cvmfs-oci --repo as root or as the owner of ${name} (CVMFS_USER in that file), as cvmfs_server needs.`,
      cause: error,
    })
  }
  const settings = serverConfSettings(text)
  if (settings.CVMFS_REPOSITORY_TYPE !== 'stratum0') {
    logger.debug(`${conf}: CVMFS_REPOSITORY_TYPE=${settings.CVMFS_REPOSITORY_TYPE ?? ''}, not a stratum-0 or publisher`)
    return undefined
  }
  return serverConfig(settings, name)
}

/** Whether a transaction is open: the flag file cvmfs_server's is_in_transaction tests. */
export async function isInTransaction(config: ServerConfig): Promise<boolean> {
  return stat(join(config.spoolDir, 'in_transaction.lock')).then((s) => s.isFile(), () => false)
}

/** What `cvmfs_server list` would say of `name`, from its server.conf and transaction flag. */
export async function repositoryStatus(name: string, logger: Logger): Promise<RepositoryStatus> {
  const config = await readServerConfig(name, logger)
  return config ? {listed: true, inTransaction: await isInTransaction(config)} : {listed: false, inTransaction: false}
}

/** What of a server.conf's text cvmfs-oci needs. */
export function parseServerConf(text: string, name: string): ServerConfig {
  return serverConfig(serverConfSettings(text), name)
}

function serverConfig(values: Record<string, string>, name: string): ServerConfig {
  // gw,<tmp dir>,<gateway URL>
  const gateway = /^gw,[^,]*,(.+)$/.exec(values.CVMFS_UPSTREAM_STORAGE ?? '')?.[1]
  return {
    spoolDir: values.CVMFS_SPOOL_DIR || join('/var/spool/cvmfs', name),
    stratum0: values.CVMFS_STRATUM0?.replaceAll('@fqrn@', name) || undefined,
    gatewayUrl: gateway?.replace(/\/+$/, ''),
  }
}

/**
 * The `KEY=VALUE` lines of a server.conf (cvmfs_server sources it as shell; it writes
 * only plain assignments, values optionally quoted).
 */
export function serverConfSettings(text: string): Record<string, string> {
  const settings: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (!match) continue
    let value = match[2]!.trim()
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) value = value.slice(1, -1)
    settings[match[1]!] = value
  }
  return settings
}

async function server(args: string[], logger: Logger, input?: Readable, okExitCodes?: number[]) {
  return run(PROGRAM, args, {logger, missingHint: MISSING, input, okExitCodes})
}

function transactionOpen(name: string, cause: unknown): BusyError {
  return new BusyError(`repository ${name} is already in a transaction`, {
    code: 'E_TRANSACTION_OPEN',
    hint: `Someone else is changing ${name}. Wait for them, or end it: cvmfs_server publish ${name} (keep) or cvmfs_server abort -f ${name} (discard).`,
    cause,
  })
}

/** The repository is not one this machine publishes. */
export function notAPublisher(name: string): UserError {
  return new UserError(`${name} is not a repository of this machine: there is no stratum-0 or publisher configuration ${join(REPOSITORIES_DIR, name, 'server.conf')}`, {
    code: 'E_NOT_A_PUBLISHER',
    hint: `Run cvmfs-oci --repo on the stratum-0 of ${name} or on a publisher of its gateway (cvmfs_server mkfs / mkfs -w … creates one), or check the name.`,
  })
}

/**
 * The one error family of cvmfs-oci. Every error a user can see carries a stable
 * `code`, a documented process exit code, a message that says what happened, and
 * (where there is one) a `hint` that says what to do next. The cause chain is kept.
 *
 * Exit codes (documented in README.md, "Exit codes"):
 *   0  success
 *   1  generic failure: the user must act (bad repository directory, permissions, …)
 *   2  usage error: a flag or argument is wrong (also oclif's own parse errors)
 *   3  not found: the image is not published / the source image does not exist
 *   4  verification failed: the image is invalid or hostile (schema, digest, tar entry)
 *   5  an external program failed or is missing (skopeo, cvmfs_server, setfattr, …)
 *   6  busy: another publisher holds the repository, or it is in a transaction we did not open
 *  70  internal error: a bug in cvmfs-oci
 * 130, 143  interrupted by SIGINT/SIGTERM (128 + signal), after aborting an open
 *           transaction and removing a publish's download (src/backends/signals.ts;
 *           not an error of this family)
 */
export const ExitCode = {
  Failure: 1,
  Usage: 2,
  NotFound: 3,
  Verification: 4,
  External: 5,
  Busy: 6,
  Bug: 70,
} as const

export interface ErrorOptions {
  /** Stable machine-readable code, e.g. `E_DIGEST_MISMATCH`. */
  code?: string
  /** What the user should do next. */
  hint?: string
  cause?: unknown
}

export class CvmfsOciError extends Error {
  readonly code: string
  readonly exitCode: number
  readonly hint?: string

  constructor(message: string, exitCode: number, defaultCode: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = new.target.name
    this.code = options.code ?? defaultCode
    this.exitCode = exitCode
    this.hint = options.hint
  }

  /** Message and hint, as shown to a person. */
  display(): string {
    return this.hint ? `${this.message}\n${this.hint}` : this.message
  }

  toJSON(): Record<string, unknown> {
    return {error: this.name, code: this.code, exitCode: this.exitCode, message: this.message, hint: this.hint}
  }
}

/** The user must act: wrong directory, missing permission, conflicting state. */
export class UserError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Failure, 'E_USER', options)
  }
}

/** A flag or an argument is malformed. */
export class UsageError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Usage, 'E_USAGE', options)
  }
}

/** The image (published, or at its source) does not exist. */
export class NotFoundError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.NotFound, 'E_NOT_FOUND', options)
  }
}

/** The image failed verification: schema, digest, size, diff_id, hostile tar entry. */
export class VerificationError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Verification, 'E_VERIFY', options)
  }
}

/** Another process holds the repository. */
export class BusyError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Busy, 'E_BUSY', options)
  }
}

/** An external program failed (or is missing). */
export class ExternalError extends CvmfsOciError {
  readonly command: string
  readonly commandExitCode?: number
  readonly stderrTail: string

  constructor(
    message: string,
    details: {command: string; exitCode?: number; stderrTail?: string},
    options?: ErrorOptions,
  ) {
    super(message, ExitCode.External, 'E_EXTERNAL', options)
    this.command = details.command
    this.commandExitCode = details.exitCode
    this.stderrTail = details.stderrTail ?? ''
  }

  override toJSON(): Record<string, unknown> {
    return {...super.toJSON(), command: this.command, commandExitCode: this.commandExitCode, stderr: this.stderrTail}
  }
}

/** Our fault: an invariant broke. */
export class BugError extends CvmfsOciError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Bug, 'E_BUG', {
      hint: 'This is a bug in cvmfs-oci; please report it with the command line and this message.',
      ...options,
    })
  }
}

/** Wrap anything thrown into the family (unknown errors become BugError). */
export function toCvmfsOciError(error: unknown): CvmfsOciError {
  if (error instanceof CvmfsOciError) return error
  const err = error as NodeJS.ErrnoException
  if (err && typeof err === 'object' && typeof err.code === 'string' && typeof err.message === 'string') {
    // A system error that escaped a more precise handler: name the syscall and path.
    if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
      return new UserError(`permission denied: ${err.message}`, {
        code: `E_${err.code}`,
        hint: 'Check that you may write there (root, or the repository owner), or that the file system is writable.',
        cause: error,
      })
    }
    if (err.code === 'ENOSPC') {
      return new UserError(`no space left on device: ${err.message}`, {code: 'E_ENOSPC', cause: error})
    }
  }
  const message = error instanceof Error ? error.message : String(error)
  return new BugError(`unexpected error: ${message}`, {cause: error})
}

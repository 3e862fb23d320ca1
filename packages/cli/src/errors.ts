/** Exit statuses of the `sipworks` command. */
export const EXIT = {
  /** The request succeeded (2xx), or the server stopped cleanly. */
  ok: 0,
  /** The peer answered with a failure (3xx-6xx). */
  failure: 1,
  /** The command line was wrong. */
  usage: 2,
  /** No answer in time, or the transport failed (no route, connection refused...). */
  timeout: 3,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A command line the CLI cannot run: exit status 2, with the usage text. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'SIP_ERR_CLI_USAGE';
}

/** A local failure that is not the peer's answer (a file, a port, a transport): exit status 3. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly code = 'SIP_ERR_CLI';
  readonly exitCode: ExitCode;
  constructor(message: string, exitCode: ExitCode = EXIT.timeout, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

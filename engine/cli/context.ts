/** Where a command writes; tests pass buffers, the binary passes the process's streams. */
export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly isTTY: boolean;
  readonly color: boolean;
  readonly prompt?: (question: string) => Promise<string>;
  readonly signal?: AbortSignal;
}

/** A failure the user can act on; printed as one line (plus a hint), exit code 1. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = 1,
    /** The details were printed already (policy errors, one per line): print nothing more. */
    readonly reported = false,
  ) {
    super(message);
  }
}

/** Never print a password: URLs, `password=` keywords and `PGPASSWORD` in messages lose theirs. */
export { redact } from '../connection/redact.ts';

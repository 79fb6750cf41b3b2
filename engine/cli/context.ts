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

/** Never print a password: URLs in messages lose theirs. */
export function redact(text: string): string {
  return text.replace(/(postgres(?:ql)?:\/\/[^:@/\s]+):[^@/\s]+@/g, '$1:***@');
}

export function databaseUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const url = flag ?? env['DATABASE_URL'];
  if (url) return url;
  // The PG* variables are honoured by the driver itself when no URL is given.
  if (env['PGHOST'] || env['PGDATABASE'] || env['PGPORT'] || env['PGSERVICE']) return undefined;
  throw new CliError('no database given', 'pass --database-url or set DATABASE_URL (`pgwarden up` prints one for the embedded cluster)');
}

import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { durationMs } from '../cli/duration.ts';

/** True when the module at `moduleUrl` is the script node was started with (not imported by a test). */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/** `DATABASE_URL`, or undefined so that `pg` falls back to the PG* variables, as libpq does. */
export function databaseUrlFromEnv(): string | undefined {
  const url = process.env['DATABASE_URL'];
  return url === undefined || url === '' ? undefined : url;
}

/** `{ connectionString }` when a URL is given, for resolveConnection. */
export function withUrl(url: string | undefined): { connectionString?: string } {
  return url === undefined ? {} : { connectionString: url };
}

/** Connection failures as one sentence; `pg`'s messages name host and port, never the password. */
export function connectionError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  // pgwarden's connection module says so itself.
  if (message.startsWith('cannot connect to the database')) return new Error(message, { cause: error });
  return new Error(`could not connect to the database: ${message}`, { cause: error });
}

/** A `--duration` in milliseconds, in pgwarden's one duration syntax (`durationMs`: 10s, 1500ms, 2m). */
export function parseDurationMs(text: string): number {
  const ms = durationMs(text);
  if (ms === undefined) throw new Error(`"${text}" is not a duration; expected something like 10s, 1500ms or 2m`);
  return ms;
}

/** Parses a non-negative integer option, naming the option when it is not one. */
export function parseIntegerOption(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got "${text}"`);
  return value;
}

/** The CLI's error contract: one sentence on stderr, exit code 1, no stack trace unless --debug. */
export function exitWithError(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: ${message}\n`);
  if (process.argv.includes('--debug') && error instanceof Error && error.stack !== undefined) {
    process.stderr.write(`${error.stack}\n`);
  }
  process.exit(1);
}

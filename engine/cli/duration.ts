import { CliError } from './context.ts';

/**
 * The one duration syntax of pgwarden: "500ms", "5s", "2m", "6h", or a bare number of milliseconds
 * ("0" is how `--build-timeout 0` says "no limit"). Undefined when the text is not a duration, so each
 * caller words its own error.
 */
export function durationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/u.exec(text.trim());
  if (match === null) return undefined;
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'] ?? 1;
  return Math.round(Number(match[1]) * factor);
}

/** A duration option's value in milliseconds, or the one-line error naming the option. */
export function parseDuration(value: string, flag: string): number {
  const ms = durationMs(value);
  if (ms === undefined) throw new CliError(`--${flag} must be a duration like 5s, 500ms or 2m, got "${value}"`);
  return ms;
}

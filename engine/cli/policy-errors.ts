import type { PolicyError } from '../policy/desired.ts';
import { renderPolicyErrors } from '../render/render-text.ts';
import type { Io } from './context.ts';

export interface PolicyErrorReport {
  /** `--json` (or `--format json`): the errors as data on stdout, for machines. */
  readonly json: boolean;
  /** Found while loading the files, or while planning against the database. */
  readonly stage: 'loading' | 'planning';
}

/**
 * Prints policy errors for people (stderr, one `file:line:col: message (hint)` line each), as JSON on
 * stdout with `--json`, and as GitHub workflow commands when `GITHUB_ACTIONS=true`, which puts each one
 * on the pull request's diff at its line.
 */
export function reportPolicyErrors(errors: readonly PolicyError[], io: Io, report: PolicyErrorReport): void {
  if (report.json) io.stdout(`${JSON.stringify({ valid: false, errors: errors.map(policyErrorData) }, null, 2)}\n`);
  io.stderr(renderPolicyErrors(errors, report.stage));
  // On stderr too: the runner reads workflow commands from both streams, and stdout may be JSON.
  if (io.env['GITHUB_ACTIONS'] === 'true') io.stderr(errors.map(workflowCommand).join(''));
}

/** One error as data: `column`, not `col`, and `hint` always present (null when there is none). */
export function policyErrorData(error: PolicyError): { file: string; line: number; column: number; message: string; hint: string | null } {
  return { file: error.file, line: error.line, column: error.col, message: error.message, hint: error.hint ?? null };
}

/** `::error file=policies/a.yaml,line=3,col=7::message (hint)`, escaped as @actions/core escapes it. */
export function workflowCommand(error: PolicyError): string {
  const property = (text: string): string => escapeData(text).replace(/:/gu, '%3A').replace(/,/gu, '%2C');
  const message = `${error.message}${error.hint ? ` (${error.hint})` : ''}`;
  return `::error file=${property(error.file)},line=${error.line},col=${error.col},title=pgwarden::${escapeData(message)}\n`;
}

function escapeData(text: string): string {
  return text.replace(/%/gu, '%25').replace(/\r/gu, '%0D').replace(/\n/gu, '%0A');
}

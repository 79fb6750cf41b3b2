import path from 'node:path';
import type { DesiredState } from '../policy/desired.ts';
import { loadPolicies } from '../policy/load.ts';
import { CliError, type Io } from './context.ts';
import { reportPolicyErrors } from './policy-errors.ts';

/**
 * The policies of `--policies` (default ./policies), or every mistake in them reported (see
 * `reportPolicyErrors`; `json`: also as data on stdout) and exit 1.
 */
export async function loadOrFail(policiesDir: string | undefined, io: Io, options: { readonly json?: boolean } = {}): Promise<DesiredState> {
  const given = policiesDir ?? 'policies';
  const { desired, errors } = await loadPolicies(path.resolve(io.cwd, given), { displayDir: given });
  if (errors.length > 0) {
    reportPolicyErrors(errors, io, { json: options.json ?? false, stage: 'loading' });
    throw new CliError('invalid policies', undefined, 1, true);
  }
  return desired;
}

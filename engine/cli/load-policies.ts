import path from 'node:path';
import type { DesiredState } from '../policy/desired.ts';
import { loadPolicies } from '../policy/load.ts';
import { renderPolicyErrors } from '../render/render-text.ts';
import { CliError, type Io } from './context.ts';

/** The policies of `--policies` (default ./policies), or every mistake in them printed and exit 1. */
export async function loadOrFail(policiesDir: string | undefined, io: Io): Promise<DesiredState> {
  const given = policiesDir ?? 'policies';
  const { desired, errors } = await loadPolicies(path.resolve(io.cwd, given), { displayDir: given });
  if (errors.length > 0) {
    io.stderr(renderPolicyErrors(errors));
    throw new CliError('invalid policies', undefined, 1, true);
  }
  return desired;
}

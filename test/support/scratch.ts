import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';

/**
 * A new temporary folder inside the run's scratch folder, which the global setup removes when the run
 * ends — whether or not the test that made it cleaned up (a failed or timed-out test does not).
 */
export async function scratchFolder(prefix: string): Promise<string> {
  const root = inject('scratchDir') || tmpdir();
  return mkdtemp(path.join(root, prefix));
}

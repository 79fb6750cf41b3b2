import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A temporary policies directory, named relative to the working directory as a user would type it. */
export interface PolicyDir {
  readonly dir: string;
  /** A file's name as `loadPolicies` shows it in errors and source positions. */
  file(name: string): string;
  remove(): Promise<void>;
}

export async function policyDir(files: Readonly<Record<string, string>>): Promise<PolicyDir> {
  const absolute = await mkdtemp(path.join(tmpdir(), 'pgwarden-policy-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(absolute, name)), { recursive: true });
    await writeFile(path.join(absolute, name), text);
  }
  const dir = path.relative(process.cwd(), absolute);
  return {
    dir,
    file: (name) => path.join(dir, name),
    remove: () => rm(absolute, { recursive: true, force: true }),
  };
}

/** Lines joined with newlines, so that a fixture's line numbers can be read off the test. */
export function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

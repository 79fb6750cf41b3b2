import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../../engine/cli/main.ts';
import { scratchFolder } from './scratch.ts';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process, exactly as the binary does minus the process wiring. */
export async function runCli(args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal }): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { ...options.env },
    cwd: options.cwd,
    isTTY: false,
    color: false,
    signal: options.signal,
  });
  return { code, stdout, stderr };
}

/** A project directory with `policies/<file>` holding the given YAML texts, removed when the run ends. */
export async function projectWith(files: Record<string, string>): Promise<string> {
  const dir = await scratchFolder('project-');
  await mkdir(path.join(dir, 'policies'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'policies', name), text);
  return dir;
}

export async function writePolicy(project: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(project, 'policies', name), text);
}

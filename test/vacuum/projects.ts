import { rm } from 'node:fs/promises';
import { projectWith } from '../support/cli.ts';

const made: string[] = [];

/** `projectWith`, remembered so that `removeProjects()` deletes the directories afterwards. */
export async function project(files: Record<string, string>): Promise<string> {
  const dir = await projectWith(files);
  made.push(dir);
  return dir;
}

export async function removeProjects(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

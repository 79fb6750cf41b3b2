import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../engine/cli/main.ts';
import { runCli } from '../support/cli.ts';

let home: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-help-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('pgwarden <command> --help', () => {
  it.each(Object.keys(COMMANDS))('prints the usage of %s and does nothing else', async (name) => {
    const result = await runCli([name, '--help'], { cwd: home, env: { PGWARDEN_HOME: home } });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`Usage: pgwarden ${name} [options]`);
    expect(result.stdout).toContain(COMMANDS[name]!.summary);
    // `up --help` once ran initdb; nothing may be created.
    expect(await readdir(home)).toEqual([]);
  });

  it('lists every command for pgwarden --help', async () => {
    const result = await runCli(['--help'], { cwd: home });
    expect(result.code).toBe(0);
    for (const name of Object.keys(COMMANDS)) expect(result.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  });
});

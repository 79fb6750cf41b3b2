import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { durationMs } from '../../engine/cli/duration.ts';
import { COMMANDS, packageVersion } from '../../engine/cli/main.ts';
import { COMMON_OPTIONS, type OptionSpecs } from '../../engine/cli/option-spec.ts';
import { useColor } from '../../engine/render/color.ts';
import { runCli } from '../support/cli.ts';

let home: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-options-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('the command line', () => {
  it('prints the package version for --version', async () => {
    const result = await runCli(['--version'], { cwd: home });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^pgwarden \d+\.\d+\.\d+/);
    expect(result.stdout.trim()).toBe(`pgwarden ${packageVersion()}`);
  });

  it.each(Object.keys(COMMANDS))('lists every option of %s with its description and default', async (name) => {
    const { options } = await COMMANDS[name]!.load();
    const result = await runCli([name, '-h'], { cwd: home });
    expect(result.code).toBe(0);
    const all: OptionSpecs = { ...options, ...COMMON_OPTIONS };
    for (const [option, spec] of Object.entries(all)) {
      const head = `--${option}${spec.value ? ` ${spec.value}` : ''}  `;
      const line = result.stdout.split('\n').find((l) => /^ {2}(-\w, | {4})--/u.test(l) && l.includes(head));
      expect(line, `--${option}`).toContain(spec.description);
      if (spec.byDefault !== undefined) expect(line).toContain(`(default: ${spec.byDefault})`);
    }
  });

  it('suggests the option a typo most likely meant, naming the command', async () => {
    const result = await runCli(['plan', '--detailed-exitcod'], { cwd: home });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('pgwarden: unknown option --detailed-exitcod (did you mean --detailed-exitcode?)\n  hint: `pgwarden plan --help` lists the options\n');
  });

  it('suggests the command a typo most likely meant', async () => {
    const result = await runCli(['valdate'], { cwd: home });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown command "valdate" (did you mean "validate"?)');
  });

  it('rejects a value given to an option that takes none, in one line', async () => {
    const result = await runCli(['down', '--destroy=yes'], { cwd: home, env: { PGWARDEN_HOME: home } });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toMatch(/^pgwarden: option '--destroy' does not take an argument/);
  });
});

describe('colours', () => {
  it('are on for a terminal and off otherwise', () => {
    expect(useColor({ flag: false, env: {}, isTTY: true })).toBe(true);
    expect(useColor({ flag: false, env: {}, isTTY: false })).toBe(false);
  });

  it('are off with --no-color or a non-empty NO_COLOR, even when forced', () => {
    expect(useColor({ flag: true, env: { FORCE_COLOR: '1' }, isTTY: true })).toBe(false);
    expect(useColor({ flag: false, env: { NO_COLOR: '1', FORCE_COLOR: '1' }, isTTY: true })).toBe(false);
    expect(useColor({ flag: false, env: { NO_COLOR: '' }, isTTY: true })).toBe(true);
  });

  it('are forced by FORCE_COLOR on a pipe, and FORCE_COLOR=0 turns them off on a terminal', () => {
    expect(useColor({ flag: false, env: { FORCE_COLOR: '1' }, isTTY: false })).toBe(true);
    expect(useColor({ flag: false, env: { FORCE_COLOR: '0' }, isTTY: true })).toBe(false);
  });
});

describe('durations', () => {
  it('read ms, s, m and h, and a bare number as milliseconds', () => {
    expect([durationMs('500ms'), durationMs('5s'), durationMs('2m'), durationMs('6h'), durationMs('0'), durationMs('1.5s')]).toEqual([500, 5000, 120_000, 21_600_000, 0, 1500]);
  });

  it('are undefined for anything else', () => {
    expect([durationMs('soon'), durationMs('5 d'), durationMs('-1s'), durationMs('')]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

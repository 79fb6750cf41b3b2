import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Issue 14's hygiene: the engine is the package's code and never reaches into examples/ (data and docs
// only); CLI commands do not borrow helpers from each other (those live in engine/cli/).
const engine = fileURLToPath(new URL('../../engine', import.meta.url));
const sources = (readdirSync(engine, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => path.join(engine, f));
const importsOf = (file: string): string[] => [...readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gmu)].map((m) => m[1] ?? '');

describe('module boundaries', () => {
  it('the engine imports nothing from examples/', () => {
    const offenders = sources.flatMap((file) => importsOf(file).filter((s) => s.includes('/examples/')).map((s) => `${path.relative(engine, file)}: ${s}`));
    expect(offenders).toEqual([]);
  });

  it('a CLI command imports no other command (the demo, a tour of them, excepted)', () => {
    const commands = path.join(engine, 'cli', 'commands');
    const offenders = readdirSync(commands)
      .filter((f) => !f.startsWith('demo'))
      .flatMap((f) => importsOf(path.join(commands, f)).filter((s) => s.startsWith('./')).map((s) => `${f}: ${s}`));
    expect(offenders).toEqual([]);
  });
});

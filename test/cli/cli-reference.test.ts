import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { BEGIN, CLI_DOC_FILE, END, loadCommandSpecs, README_FILE, renderCliDoc, renderReadmeTable } from '../../engine/cli/cli-reference.ts';
import { COMMANDS } from '../../engine/cli/main.ts';

// The README's CLI table and docs/cli.md come from the option specs `--help` prints; an option added to
// a command and not to the docs (or the other way round) fails here. `npm run docs:cli` rewrites both.
describe('the CLI reference', () => {
  it('in the README is the one the option specs give', async () => {
    const readme = await readFile(README_FILE, 'utf8');
    const section = readme.slice(readme.indexOf(BEGIN), readme.indexOf(END) + END.length);
    expect(section, 'run `npm run docs:cli`').toBe(renderReadmeTable(await loadCommandSpecs()));
  });

  it('in docs/cli.md is the one the option specs give', async () => {
    expect(await readFile(CLI_DOC_FILE, 'utf8'), 'run `npm run docs:cli`').toBe(renderCliDoc(await loadCommandSpecs()));
  });

  it('names every command and every option of each', async () => {
    const readme = await readFile(README_FILE, 'utf8');
    for (const { name, options } of await loadCommandSpecs()) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`pgwarden ${name}\` |`));
      expect(row, name).toBeDefined();
      for (const option of Object.keys(options)) expect(row, `${name} --${option}`).toContain(`--${option}`);
    }
    expect((await loadCommandSpecs()).map((c) => c.name)).toEqual(Object.keys(COMMANDS));
  });
});

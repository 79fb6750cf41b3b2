import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The PR workflow's own shell steps, taken verbatim from examples/github/pgwarden.yml and run with bash
 * against the suite's real server: `npx` resolves to this checkout's pgwarden binary.
 */
const root = fileURLToPath(new URL('../..', import.meta.url));

interface Step {
  name?: string;
  run?: string;
}
interface Workflow {
  jobs: Record<string, { steps: Step[] }>;
}

let db: TestDatabase;
let project: string;
let shimDir: string;
let scripts: { plan: string; apply: string };

function stepScript(workflow: Workflow, name: string): string {
  const step = Object.values(workflow.jobs)
    .flatMap((job) => job.steps)
    .find((s) => s.name === name);
  if (!step?.run) throw new Error(`the workflow has no step "${name}" with a run script`);
  return step.run;
}

async function runStep(script: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; outputs: Record<string, string> }> {
  const outputFile = path.join(project, `github-output-${Date.now()}`);
  await writeFile(outputFile, '');
  const result = await execa('bash', ['-e', '-c', script], {
    cwd: project,
    reject: false,
    env: { PATH: `${shimDir}:${process.env['PATH'] ?? ''}`, DATABASE_URL: db.url, GITHUB_OUTPUT: outputFile, ...env },
    extendEnv: false,
  });
  const outputs = Object.fromEntries(
    (await readFile(outputFile, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { code: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr), outputs };
}

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`CREATE TABLE deployments (id int PRIMARY KEY, tenant_id int, status text, created_at timestamptz)`);
  project = await projectWith({
    'deployments.yaml': 'table: deployments\nindexes:\n  - name: deployments_tenant_status_idx\n    columns: [tenant_id, status]\n',
  });
  shimDir = path.join(project, '.shim');
  await mkdir(shimDir);
  const npx = path.join(shimDir, 'npx');
  await writeFile(npx, `#!/bin/sh\n[ "$1" = pgwarden ] || exit 127\nshift\nexec node ${JSON.stringify(path.join(root, 'bin/pgwarden.js'))} "$@"\n`);
  await chmod(npx, 0o755);
  const workflow = parse(await readFile(path.join(root, 'examples/github/pgwarden.yml'), 'utf8')) as Workflow;
  scripts = { plan: stepScript(workflow, 'pgwarden plan'), apply: stepScript(workflow, 'pgwarden apply') };
});
afterAll(async () => {
  await db.close();
});

describe("the pull-request workflow's commands, end to end", () => {
  it('plans on the branch: exit code 2 reported as changes, Markdown and the JSON plan produced', async () => {
    const step = await runStep(scripts.plan);
    expect(step.code).toBe(0);
    expect(step.outputs).toMatchObject({ exitcode: '2', changes: 'true' });
    const markdown = await readFile(path.join(project, 'plan.md'), 'utf8');
    expect(markdown).toContain('<!-- pgwarden-plan -->');
    expect(markdown).toContain('create index deployments_tenant_status_idx on public.deployments');
    const plan = JSON.parse(await readFile(path.join(project, 'plan.json'), 'utf8')) as { changes: unknown[] };
    expect(plan.changes).toHaveLength(1);
  });

  it('applies the saved plan on merge, then plans again with exit code 0', async () => {
    const apply = await runStep(scripts.apply);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('Applying the plan reviewed on the pull request');
    expect(apply.stdout).toContain('Apply complete: 1 change(s)');
    const again = await runStep(scripts.plan);
    expect(again.code).toBe(0);
    expect(again.outputs).toMatchObject({ exitcode: '0', changes: 'false' });
    expect(await readFile(path.join(project, 'plan.md'), 'utf8')).toContain('### pgwarden plan: no changes');
  });

  it('re-plans and applies when the saved plan went stale before the merge', async () => {
    await writeFile(
      path.join(project, 'policies', 'deployments.yaml'),
      'table: deployments\nindexes:\n  - name: deployments_tenant_status_idx\n    columns: [tenant_id, status]\n  - name: deployments_created_idx\n    columns: [created_at]\n',
    );
    expect((await runStep(scripts.plan)).outputs['exitcode']).toBe('2');
    await db.pool.query(`CREATE INDEX meanwhile_idx ON deployments (status)`);
    const apply = await runStep(scripts.apply);
    expect(apply.code).toBe(0);
    expect(apply.stdout).toContain('planning again from main and applying');
    expect((await runStep(scripts.plan)).outputs['exitcode']).toBe('0');
  });
  it('applies a drop only when the merged pull request was labelled pgwarden:allow-drop', async () => {
    await writeFile(
      path.join(project, 'policies', 'deployments.yaml'),
      'table: deployments\nindexes:\n  - name: deployments_tenant_status_idx\n    columns: [tenant_id, status]\n',
    );
    expect((await runStep(scripts.plan)).outputs['exitcode']).toBe('2');
    const unlabelled = await runStep(scripts.apply, { PGWARDEN_ALLOW_DROP: 'false' });
    expect(unlabelled.code).toBe(1);
    expect(unlabelled.stderr).toContain('the plan drops or detaches 1 object(s)');
    expect((await db.pool.query(`SELECT to_regclass('deployments_created_idx') IS NOT NULL AS present`)).rows[0]?.present).toBe(true);

    const labelled = await runStep(scripts.apply, { PGWARDEN_ALLOW_DROP: 'true' });
    expect(labelled.code).toBe(0);
    expect((await db.pool.query(`SELECT to_regclass('deployments_created_idx') IS NULL AS gone`)).rows[0]?.gone).toBe(true);
    expect((await runStep(scripts.plan)).outputs['exitcode']).toBe('0');
  });
});

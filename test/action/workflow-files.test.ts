import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

// What the Action and the example workflow promise on paper (their scripts run in action-scripts.test.ts).
const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string): Record<string, unknown> => parse(readFileSync(path.join(root, file), 'utf8')) as Record<string, unknown>;

interface Step {
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly with?: Record<string, string>;
  readonly env?: Record<string, string>;
}

const action = read('action.yml') as { inputs: Record<string, { description?: string }>; runs: { using: string; steps: Step[] } };
const workflow = read('examples/github/pgwarden.yml') as { on: Record<string, unknown>; permissions: unknown; jobs: Record<string, { steps: Step[]; env?: Record<string, string>; permissions?: Record<string, string> }> };
const workflowSteps = Object.values(workflow.jobs).flatMap((job) => job.steps);

describe('the pgwarden Action', () => {
  it('pins every third-party action to a commit', () => {
    const uses = [...action.runs.steps, ...workflowSteps].flatMap((s) => (s.uses && !s.uses.startsWith('./') ? [s.uses] : []));
    expect(uses.length).toBeGreaterThan(0);
    for (const ref of uses) expect(ref, ref).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/u);
  });

  it('has the inputs the docs describe, each documented', () => {
    expect(Object.keys(action.inputs)).toEqual(expect.arrayContaining(['command', 'policies', 'database-url-env', 'comment', 'github-token']));
    for (const [name, spec] of Object.entries(action.inputs)) expect(spec.description, name).toBeTruthy();
    const docs = readFileSync(path.join(root, 'docs', 'ci-recipes.md'), 'utf8');
    for (const name of Object.keys(action.inputs)) expect(docs, name).toContain(`\`${name}\``);
  });

  it('runs its scripts from the action folder, which the package ships', () => {
    const scripts = action.runs.steps.flatMap((s) => [...(s.run ?? '').matchAll(/\/action\/pgwarden-action\.mjs" (\w+)/gu)].map((m) => `action/pgwarden-action.mjs ${m[1]}`));
    expect(scripts).toEqual(['action/pgwarden-action.mjs plan', 'action/pgwarden-action.mjs locate', 'action/pgwarden-action.mjs apply']);
    expect(existsSync(path.join(root, 'action', 'pgwarden-action.mjs'))).toBe(true);
    const files = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
    expect(files).toEqual(expect.arrayContaining(['action.yml', 'action']));
  });

  it('splices no expression into a shell script: values reach scripts through env', () => {
    for (const s of [...action.runs.steps, ...workflowSteps]) expect(s.run ?? '', s.run).not.toContain('${{');
  });
});

describe('the example workflow', () => {
  it('plans pull requests and applies on merge through the Action shipped in the package', () => {
    const plan = workflowSteps.find((s) => s.with?.['command'] === 'plan');
    const apply = workflowSteps.find((s) => s.with?.['command'] === 'apply');
    expect(plan).toMatchObject({ uses: './node_modules/pgwarden', if: "github.event_name == 'pull_request'" });
    expect(apply).toMatchObject({ uses: './node_modules/pgwarden', if: "github.event_name == 'push'" });
  });

  it('checks drift on a schedule with plan --detailed-exitcode', () => {
    expect(Object.keys(workflow.on)).toContain('schedule');
    expect(workflowSteps.find((s) => s.if === "github.event_name == 'schedule'")?.run).toBe('npx --no-install pgwarden plan --detailed-exitcode');
  });

  it('grants nothing by default and reads the database URL only from a secret', () => {
    expect(workflow.permissions).toEqual({});
    const job = Object.values(workflow.jobs)[0];
    expect(job?.permissions).toEqual({ contents: 'read', 'pull-requests': 'write', actions: 'read' });
    expect(job?.env?.['DATABASE_URL']).toBe('${{ secrets.PGWARDEN_DATABASE_URL }}');
  });

  it('runs Node 22 LTS', () => {
    expect(workflowSteps.find((s) => s.uses?.startsWith('actions/setup-node@'))?.with?.['node-version']).toBe(22);
  });
});

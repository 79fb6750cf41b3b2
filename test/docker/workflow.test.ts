/**
 * The GitHub Actions workflow users copy (examples/github/pgwarden.yml): triggers, permissions,
 * the pgwarden command lines it runs, secrets, concurrency, and the exit-code handling of its
 * shell steps. (The same command lines against a real server are tested end to end elsewhere.)
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const workflowPath = join(root, 'examples/github/pgwarden.yml');
const workflowText = readFileSync(workflowPath, 'utf8');
const workflow: unknown = parse(workflowText);

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dict(value: unknown, what: string): Dict {
  if (!isDict(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list`);
  return value;
}

const top = dict(workflow, 'workflow');
const jobs = dict(top.jobs, 'jobs');

function job(name: string): Dict {
  return dict(jobs[name], `job ${name}`);
}

interface Step {
  job: string;
  step: Dict;
}

const steps: Step[] = Object.keys(jobs).flatMap((name) =>
  list(job(name).steps, `${name}.steps`).map((step) => ({ job: name, step: dict(step, `${name} step`) })),
);

const runScripts: Array<{ job: string; name: string; run: string }> = steps.flatMap(({ job: jobName, step }) =>
  typeof step.run === 'string' ? [{ job: jobName, name: String(step.name ?? ''), run: step.run }] : [],
);

function stepUsing(action: string, jobName?: string): Dict[] {
  return steps
    .filter(({ job: j, step }) => (jobName === undefined || j === jobName) && String(step.uses ?? '').startsWith(`${action}@`))
    .map(({ step }) => step);
}

function runStep(jobName: string, stepName: string): string {
  const found = runScripts.find((s) => s.job === jobName && s.name === stepName);
  if (found === undefined) throw new Error(`no run step "${stepName}" in job ${jobName}`);
  return found.run;
}

/** Every scalar of a parsed YAML document with the key path leading to it. */
function scalars(value: unknown, path: string[] = []): Array<{ path: string[]; value: string }> {
  if (Array.isArray(value)) return value.flatMap((item, i) => scalars(item, [...path, String(i)]));
  if (isDict(value)) return Object.entries(value).flatMap(([key, item]) => scalars(item, [...path, key]));
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return [{ path, value: String(value) }];
  }
  return [];
}

// ---- pgwarden command lines -------------------------------------------------------------------

const COMMANDS = new Set(['plan', 'apply', 'report']);
const FLAGS_WITH_VALUE = new Set(['--format', '--out', '--plan']);
const FLAGS = new Set([...FLAGS_WITH_VALUE, '--detailed-exitcode', '--auto-approve']);
const FORMATS = new Set(['text', 'json', 'markdown']);

interface Invocation {
  command: string;
  flags: Map<string, string | true>;
  text: string;
}

/** Quoted strings blanked out, so a message such as echo "pgwarden plan failed" is not a command. */
function unquoted(line: string): string {
  return line.replaceAll(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '""');
}

/**
 * The pgwarden invocations in one shell script. Throws on a malformed one (unknown command,
 * unknown flag, flag without its value, stray argument) and on pgwarden run other than via npx.
 */
function invocations(script: string): Invocation[] {
  const found: Invocation[] = [];
  const lines = script.replaceAll(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = unquoted(raw.trim());
    if (line.startsWith('#') || !/\bpgwarden\b/.test(line)) continue;
    const bare = line.replaceAll(/\bnpx pgwarden\b/g, '');
    if (/\bpgwarden\b/.test(bare)) throw new Error(`pgwarden is run other than via npx: ${raw.trim()}`);
    for (const match of line.matchAll(/\bnpx pgwarden\b([^;&|>)\n]*)/g)) {
      const tokens = (match[1] ?? '').trim().split(/\s+/).filter(Boolean);
      const [command, ...rest] = tokens;
      if (command === undefined || !COMMANDS.has(command)) throw new Error(`unknown pgwarden command in: ${raw.trim()}`);
      const flags = new Map<string, string | true>();
      for (let i = 0; i < rest.length; i += 1) {
        const token = rest[i] ?? '';
        const [name = '', inline] = token.split('=', 2);
        if (!FLAGS.has(name)) throw new Error(`flag or argument "${token}" is not allowed in: ${raw.trim()}`);
        if (FLAGS_WITH_VALUE.has(name)) {
          const value = inline ?? rest[(i += 1)];
          if (value === undefined || value.startsWith('-')) throw new Error(`${name} has no value in: ${raw.trim()}`);
          flags.set(name, value);
        } else {
          if (inline !== undefined) throw new Error(`${name} takes no value in: ${raw.trim()}`);
          flags.set(name, true);
        }
      }
      const format = flags.get('--format');
      if (typeof format === 'string' && !FORMATS.has(format)) throw new Error(`unknown format ${format}`);
      found.push({ command, flags, text: `pgwarden ${tokens.join(' ')}` });
    }
  }
  return found;
}


// ---- running the shell steps with a stand-in npx ---------------------------------------------

const sandboxes: string[] = [];
afterAll(() => {
  for (const dir of sandboxes) rmSync(dir, { recursive: true, force: true });
});

interface StepRun {
  status: number | null;
  calls: string[];
  outputs: Map<string, string>;
  stdout: string;
  dir: string;
}

/**
 * Runs a workflow `run:` script the way the runner does (`bash --noprofile --norc -eo pipefail`),
 * with `npx` replaced by a stand-in that records its arguments and exits with the code the test
 * chooses: STUB_EXIT_WITH_PLAN when the arguments contain --plan, STUB_EXIT otherwise.
 */
function runWithStubNpx(script: string, opts: { exit: number; exitWithPlan?: number; files?: string[] }): StepRun {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-workflow-'));
  sandboxes.push(dir);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const npx = join(bin, 'npx');
  writeFileSync(
    npx,
    [
      '#!/usr/bin/env bash',
      'printf "%s\\n" "$*" >> "$STUB_CALLS"',
      'echo "## pgwarden plan (stand-in output)"',
      'case " $* " in *" --plan "*) exit "${STUB_EXIT_WITH_PLAN:-0}" ;; esac',
      'exit "${STUB_EXIT:-0}"',
      '',
    ].join('\n'),
  );
  chmodSync(npx, 0o755);
  for (const file of opts.files ?? []) writeFileSync(join(dir, file), '{}\n');
  const scriptFile = join(dir, 'step.sh');
  writeFileSync(scriptFile, script);
  const calls = join(dir, 'calls.txt');
  const output = join(dir, 'github_output.txt');
  writeFileSync(calls, '');
  writeFileSync(output, '');
  const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', scriptFile], {
    cwd: dir,
    encoding: 'utf8',
    env: {
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      HOME: dir,
      GITHUB_OUTPUT: output,
      STUB_CALLS: calls,
      STUB_EXIT: String(opts.exit),
      STUB_EXIT_WITH_PLAN: String(opts.exitWithPlan ?? 0),
    },
  });
  const outputs = new Map<string, string>();
  for (const line of readFileSync(output, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) outputs.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return {
    status: result.status,
    calls: readFileSync(calls, 'utf8').split('\n').filter(Boolean),
    outputs,
    stdout: result.stdout,
    dir,
  };
}

// ---- the tests ---------------------------------------------------------------------------------

describe('examples/github/pgwarden.yml', () => {
  it('plans on pull requests and applies on pushes to main, both only when policies change', () => {
    const on = dict(top.on, 'on');
    const pullRequest = dict(on.pull_request, 'on.pull_request');
    const push = dict(on.push, 'on.push');
    expect(Object.keys(on).sort()).toEqual(['pull_request', 'push']);
    expect(pullRequest.paths).toEqual(['policies/**']);
    expect(push.branches).toEqual(['main']);
    expect(push.paths).toEqual(['policies/**']);
    expect(job('plan').if).toBe("github.event_name == 'pull_request'");
    expect(job('apply').if).toBe("github.event_name == 'push'");
  });

  it('grants no permission by default and each job only what it needs', () => {
    expect(top.permissions).toEqual({});
    expect(job('plan').permissions).toEqual({ contents: 'read', 'pull-requests': 'write' });
    expect(job('apply').permissions).toEqual({ contents: 'read', actions: 'read', 'pull-requests': 'read' });
    expect(job('report').permissions).toEqual({ contents: 'read' });
    expect(job('deploy').permissions).toEqual({ pages: 'write', 'id-token': 'write' });
    for (const name of Object.keys(jobs)) {
      const permissions = job(name).permissions;
      expect(isDict(permissions), `${name} declares its permissions`).toBe(true);
      expect(dict(permissions, name).contents ?? 'read', `${name} cannot push`).toBe('read');
    }
    expect(workflowText).not.toMatch(/write-all/);
  });

  it('runs pgwarden only with the commands plan, apply, report and the flags the CLI contract defines', () => {
    const allInvocations = runScripts.flatMap(({ run }) => invocations(run));
    expect(allInvocations.length).toBeGreaterThanOrEqual(4);
    expect(new Set(allInvocations.map((i) => i.command))).toEqual(COMMANDS);
    expect(allInvocations.map((i) => i.text)).toEqual(
      expect.arrayContaining([
        'pgwarden plan --format markdown --out plan.json --detailed-exitcode',
        'pgwarden apply --auto-approve --plan plan.json',
        'pgwarden apply --auto-approve',
        'pgwarden report --out site-dist',
      ]),
    );
  });

  it('rejects a command line outside that contract (the checker itself)', () => {
    expect(() => invocations('npx pgwarden plan --allow-drop')).toThrow(/not allowed/);
    expect(() => invocations('npx pgwarden destroy')).toThrow(/unknown pgwarden command/);
    expect(() => invocations('npx pgwarden plan --out')).toThrow(/no value/);
    expect(() => invocations('node_modules/.bin/pgwarden plan')).toThrow(/other than via npx/);
    expect(invocations('echo "pgwarden plan failed"')).toEqual([]);
  });

  it('writes the plan as Markdown on stdout to plan.md and saves the JSON plan as an artifact', () => {
    expect(runStep('plan', 'pgwarden plan')).toMatch(
      /npx pgwarden plan --format markdown --out plan\.json --detailed-exitcode > plan\.md/,
    );
    const [upload] = stepUsing('actions/upload-artifact', 'plan');
    const withs = dict(upload?.with, 'upload-artifact.with');
    expect(withs.name).toBe('pgwarden-plan');
    expect(withs.path).toBe('plan.json');
  });

  it('posts the plan as one pull-request comment, found again by its hidden marker and updated', () => {
    const [comment] = stepUsing('actions/github-script', 'plan');
    const script = String(dict(comment?.with, 'github-script.with').script);
    expect(script).toContain("'<!-- pgwarden-plan -->'");
    expect(script).toContain('github.rest.issues.listComments');
    expect(script).toContain('github.rest.issues.updateComment');
    expect(script).toContain('github.rest.issues.createComment');
    expect(script).toMatch(/if \(previous\)[\s\S]*updateComment[\s\S]*else[\s\S]*createComment/);
    expect(script).toContain("readFileSync('plan.md'");
  });

  it('applies the merged pull request’s saved plan, downloaded from its run, and re-plans when it is refused', () => {
    const [download] = stepUsing('dawidd6/action-download-artifact', 'apply');
    const withs = dict(download?.with, 'download.with');
    expect(withs.name).toBe('pgwarden-plan');
    expect(withs.pr).toBe('${{ steps.pr.outputs.result }}');
    expect(withs.if_no_artifact_found).toBe('warn');
    const apply = runStep('apply', 'pgwarden apply');
    expect(apply.indexOf('--plan plan.json')).toBeLessThan(apply.lastIndexOf('npx pgwarden apply --auto-approve\n'));
  });

  it('builds the report site and deploys it to GitHub Pages after the apply', () => {
    expect(job('report').needs).toBe('apply');
    expect(job('deploy').needs).toBe('report');
    const [pages] = stepUsing('actions/upload-pages-artifact', 'report');
    expect(dict(pages?.with, 'upload-pages-artifact.with').path).toBe('site-dist');
    expect(stepUsing('actions/deploy-pages', 'deploy')).toHaveLength(1);
    expect(dict(job('deploy').environment, 'deploy.environment').name).toBe('github-pages');
  });

  it('takes the database URL only from the secret store and inlines no credential', () => {
    const databaseUrls = scalars(workflow).filter(({ path }) => path[path.length - 1] === 'DATABASE_URL');
    expect(databaseUrls.length).toBeGreaterThanOrEqual(3);
    for (const { value } of databaseUrls) expect(value).toBe('${{ secrets.PGWARDEN_DATABASE_URL }}');
    for (const name of ['plan', 'apply', 'report']) {
      expect(dict(job(name).env, `${name}.env`).DATABASE_URL).toBe('${{ secrets.PGWARDEN_DATABASE_URL }}');
    }
    const secretKey = /PASSWORD|PASSWD|SECRET|TOKEN|DATABASE_URL/i;
    for (const { path, value } of scalars(workflow)) {
      const key = path[path.length - 1] ?? '';
      const inEnvOrInputs = path.includes('env') || path.includes('with');
      if (inEnvOrInputs && secretKey.test(key)) expect(value, path.join('.')).toMatch(/^\$\{\{ (secrets\.[A-Z_]+|github\.token) \}\}$/);
    }
    expect(workflowText).not.toMatch(/postgres(?:ql)?:\/\/[^\s'"]*@/);
    expect(workflowText).not.toMatch(/password\s*[=:]\s*\S/i);
  });

  it('splices no ${{ }} expression into shell scripts (values reach them through env)', () => {
    for (const { job: name, run } of runScripts) expect(run, name).not.toContain('${{');
  });

  it('never runs two applies at once and never cancels one half-way', () => {
    const concurrency = dict(job('apply').concurrency, 'apply.concurrency');
    expect(concurrency.group).toBe('pgwarden-apply-${{ github.repository }}');
    expect(concurrency['cancel-in-progress']).toBe(false);
    const planConcurrency = dict(job('plan').concurrency, 'plan.concurrency');
    expect(planConcurrency.group).toBe('pgwarden-plan-${{ github.event.pull_request.number }}');
    expect(planConcurrency['cancel-in-progress']).toBe(true);
  });

  it('is documented next to it, with the secret and the Pages set-up', () => {
    const readme = join(root, 'examples/github/README.md');
    expect(existsSync(readme)).toBe(true);
    const text = readFileSync(readme, 'utf8');
    expect(text).toContain('PGWARDEN_DATABASE_URL');
    expect(text).toContain('.github/workflows/');
    expect(text).toMatch(/Source: GitHub Actions/);
  });
});

// ---- the comment script, run against a recording stand-in for the GitHub API -------------------

interface Comment {
  id: number;
  body: string;
  user: { type: string };
}

type ScriptFn = (...args: unknown[]) => Promise<unknown>;
const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...params: string[]) => ScriptFn;

/** Runs the github-script step's script with `github`, `context`, `require` and `process` stood in. */
async function runCommentScript(existing: Comment[], planExit: string, planMarkdown = '## Plan\n1 change') {
  const [step] = stepUsing('actions/github-script', 'plan');
  const script = String(dict(step?.with, 'github-script.with').script);
  const calls: Array<{ method: string; body?: string; comment_id?: number }> = [];
  const listComments = async () => ({ data: existing });
  const github = {
    paginate: async (method: unknown) => {
      expect(method).toBe(listComments);
      return existing;
    },
    rest: {
      issues: {
        listComments,
        updateComment: async (args: { comment_id: number; body: string }) => {
          calls.push({ method: 'update', comment_id: args.comment_id, body: args.body });
        },
        createComment: async (args: { body: string }) => {
          calls.push({ method: 'create', body: args.body });
        },
      },
    },
  };
  const context = {
    serverUrl: 'https://github.example',
    runId: 7,
    repo: { owner: 'acme', repo: 'db' },
    issue: { number: 12 },
    payload: { pull_request: { head: { sha: '0123456789abcdef' } } },
  };
  const fakeRequire = (id: string) => {
    if (id !== 'node:fs') throw new Error(`unexpected require(${id})`);
    return { readFileSync: () => planMarkdown };
  };
  const fn = new AsyncFunction('github', 'context', 'require', 'process', script);
  await fn(github, context, fakeRequire, { env: { PLAN_EXIT: planExit } });
  return calls;
}

describe('the plan comment script, against a recording stand-in for the GitHub API', () => {
  const marker = '<!-- pgwarden-plan -->';

  it('creates the comment, with the marker and the plan, when the pull request has none', async () => {
    const calls = await runCommentScript([{ id: 1, body: 'LGTM', user: { type: 'User' } }], '2');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.method).toBe('create');
    expect(calls[0]?.body?.startsWith(marker)).toBe(true);
    expect(calls[0]?.body).toContain('## Plan\n1 change');
  });

  it('updates its own earlier comment instead of adding a second one', async () => {
    const calls = await runCommentScript(
      [
        { id: 1, body: `quoting ${marker} by hand`, user: { type: 'User' } },
        { id: 2, body: `${marker}\nold plan`, user: { type: 'Bot' } },
      ],
      '0',
    );
    expect(calls).toEqual([expect.objectContaining({ method: 'update', comment_id: 2 })]);
  });

  it('says the plan failed, without plan text, when pgwarden plan exited 1', async () => {
    const calls = await runCommentScript([], '1', 'must not appear');
    expect(calls[0]?.body).toContain('pgwarden plan failed');
    expect(calls[0]?.body).not.toContain('must not appear');
  });

  it('truncates a plan too long for one GitHub comment', async () => {
    const calls = await runCommentScript([], '2', 'x'.repeat(70_000));
    expect(calls[0]?.body?.length).toBeLessThan(65_536);
    expect(calls[0]?.body).toContain('Plan truncated');
  });
});

describe('the shell steps of the workflow, with npx replaced by a stand-in that only sets exit codes', () => {
  const plan = runStep('plan', 'pgwarden plan');
  const apply = runStep('apply', 'pgwarden apply');

  it('passes the plan step and reports no changes when pgwarden plan exits 0', () => {
    const run = runWithStubNpx(plan, { exit: 0 });
    expect(run.status).toBe(0);
    expect(run.outputs.get('exitcode')).toBe('0');
    expect(run.outputs.get('changes')).toBe('false');
    expect(readFileSync(join(run.dir, 'plan.md'), 'utf8')).toContain('## pgwarden plan');
  });

  it('passes the plan step and reports changes when pgwarden plan exits 2', () => {
    const run = runWithStubNpx(plan, { exit: 2 });
    expect(run.status).toBe(0);
    expect(run.outputs.get('exitcode')).toBe('2');
    expect(run.outputs.get('changes')).toBe('true');
  });

  it('fails the plan step, keeping the exit code for the comment, when pgwarden plan exits 1', () => {
    const run = runWithStubNpx(plan, { exit: 1 });
    expect(run.status).toBe(1);
    expect(run.outputs.get('exitcode')).toBe('1');
    expect(run.stdout).toContain('::error::');
  });

  it('applies the saved plan once and stops there when pgwarden accepts it', () => {
    const run = runWithStubNpx(apply, { exit: 0, exitWithPlan: 0, files: ['plan.json'] });
    expect(run.status).toBe(0);
    expect(run.calls).toEqual(['pgwarden apply --auto-approve --plan plan.json']);
  });

  it('re-plans and applies when the saved plan is refused because the catalog moved', () => {
    const run = runWithStubNpx(apply, { exit: 0, exitWithPlan: 1, files: ['plan.json'] });
    expect(run.status).toBe(0);
    expect(run.calls).toEqual(['pgwarden apply --auto-approve --plan plan.json', 'pgwarden apply --auto-approve']);
    expect(run.stdout).toContain('::warning::');
  });

  it('fails the apply when the re-plan fails too', () => {
    const run = runWithStubNpx(apply, { exit: 1, exitWithPlan: 1, files: ['plan.json'] });
    expect(run.status).toBe(1);
    expect(run.calls).toHaveLength(2);
  });

  it('plans and applies from main when no saved plan was downloaded', () => {
    const run = runWithStubNpx(apply, { exit: 0 });
    expect(run.status).toBe(0);
    expect(run.calls).toEqual(['pgwarden apply --auto-approve']);
  });
});

import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// The GitHub Action's scripts (action/pgwarden-action.mjs) against a local server that plays the GitHub
// REST API and records every call, and pgwarden against the suite's real database.
const root = fileURLToPath(new URL('../..', import.meta.url));
const script = path.join(root, 'action', 'pgwarden-action.mjs');

interface Call {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}
interface Comment {
  readonly id: number;
  body: string;
}

const calls: Call[] = [];
const comments = new Map<number, Comment[]>();
const pullsByCommit = new Map<string, unknown[]>();
let nextId = 1;
let server: Server;
let apiUrl: string;
let db: TestDatabase;
let project: string;

async function bodyOf(request: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of request) text += String(chunk);
  return text === '' ? undefined : JSON.parse(text);
}

beforeAll(async () => {
  server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const body = await bodyOf(request);
      calls.push({ method: request.method ?? '', path: url.pathname, body });
      const reply = (status: number, data: unknown): void => {
        response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(data));
      };
      if (request.headers.authorization !== 'Bearer test-token') return reply(401, { message: 'Bad credentials' });
      let m = /^\/repos\/acme\/shop\/issues\/(\d+)\/comments$/u.exec(url.pathname);
      if (m && request.method === 'GET') return reply(200, url.searchParams.get('page') === '1' ? (comments.get(Number(m[1])) ?? []) : []);
      if (m && request.method === 'POST') {
        const comment = { id: nextId++, body: (body as { body: string }).body };
        comments.set(Number(m[1]), [...(comments.get(Number(m[1])) ?? []), comment]);
        return reply(201, comment);
      }
      m = /^\/repos\/acme\/shop\/issues\/comments\/(\d+)$/u.exec(url.pathname);
      if (m && request.method === 'PATCH') {
        const comment = [...comments.values()].flat().find((c) => c.id === Number(m?.[1]));
        if (!comment) return reply(404, { message: 'Not Found' });
        comment.body = (body as { body: string }).body;
        return reply(200, comment);
      }
      m = /^\/repos\/acme\/shop\/commits\/([\w-]+)\/pulls$/u.exec(url.pathname);
      if (m && request.method === 'GET') return reply(200, pullsByCommit.get(m[1] ?? '') ?? []);
      return reply(404, { message: 'Not Found' });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  db = await useTestDatabase();
  await db.pool.query('CREATE TABLE orders (id int PRIMARY KEY, tenant_id int, created_at timestamptz)');
  project = await projectWith({ 'orders.yaml': 'table: public.orders\nindexes:\n  - name: orders_tenant_idx\n    columns: [tenant_id]\n' });
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await db.close();
  await rm(project, { recursive: true, force: true });
});

interface Step {
  readonly code: number;
  readonly stderr: string;
  readonly outputs: Record<string, string>;
}

/** One step of the Action: the script with the environment the runner gives it. */
async function step(command: 'plan' | 'locate' | 'apply', options: { event?: unknown; sha?: string; runId?: string; inputs?: Record<string, string> }): Promise<Step> {
  const outputFile = path.join(project, `output-${command}-${Date.now()}`);
  const eventFile = path.join(project, 'event.json');
  await writeFile(outputFile, '');
  await writeFile(eventFile, JSON.stringify(options.event ?? {}));
  const result = await execa(process.execPath, [script, command], {
    cwd: project,
    reject: false,
    extendEnv: false,
    env: {
      PATH: process.env['PATH'],
      DATABASE_URL: db.url,
      GITHUB_API_URL: apiUrl,
      GITHUB_SERVER_URL: 'https://github.example',
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_EVENT_PATH: eventFile,
      GITHUB_RUN_ID: options.runId ?? '101',
      GITHUB_SHA: options.sha ?? 'f00d',
      GITHUB_OUTPUT: outputFile,
      GITHUB_TOKEN: 'test-token',
      INPUT_PGWARDEN: `${process.execPath} ${path.join(root, 'bin', 'pgwarden.js')}`,
      ...options.inputs,
    },
  });
  const outputs = Object.fromEntries(
    (await readFile(outputFile, 'utf8'))
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  await rm(outputFile);
  return { code: result.exitCode ?? -1, stderr: String(result.stderr), outputs };
}

const pullRequest = (number: number, headSha: string) => ({ pull_request: { number, head: { sha: headSha } } });

async function planAgain(): Promise<number> {
  const result = await execa(process.execPath, [path.join(root, 'bin', 'pgwarden.js'), 'plan', '--detailed-exitcode'], { cwd: project, reject: false, env: { DATABASE_URL: db.url } });
  return result.exitCode ?? -1;
}

async function indexExists(name: string): Promise<boolean> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_catalog.pg_class WHERE relname = $1', [name]);
  return rows[0]?.n === 1;
}

describe('the GitHub Action', () => {
  it('posts the plan as one pull request comment, saves plan.json and says there are changes', async () => {
    const result = await step('plan', { event: pullRequest(7, 'aaa1') });
    expect(result.code, result.stderr).toBe(0);
    expect(result.outputs).toMatchObject({ changes: 'true', artifact: 'pgwarden-plan-7' });
    expect(existsSync(result.outputs['plan-file'] ?? '')).toBe(true);
    const posted = comments.get(7) ?? [];
    expect(posted).toHaveLength(1);
    expect(posted[0]?.body).toContain('create index orders_tenant_idx');
    expect(posted[0]?.body).toContain('<!-- pgwarden-review {"headSha":"aaa1","runId":"101","artifact":"pgwarden-plan-7"} -->');
  });

  it('updates that comment when the pull request changes, never adding a second one', async () => {
    const before = calls.length;
    const result = await step('plan', { event: pullRequest(7, 'aaa2'), runId: '102' });
    expect(result.code, result.stderr).toBe(0);
    expect(comments.get(7)).toHaveLength(1);
    expect(comments.get(7)?.[0]?.body).toContain('"headSha":"aaa2","runId":"102"');
    expect(calls.slice(before).map((c) => `${c.method} ${c.path}`)).toEqual(['GET /repos/acme/shop/issues/7/comments', 'PATCH /repos/acme/shop/issues/comments/1']);
  });

  it('finds the merged pull request\'s reviewed plan by the merge commit', async () => {
    pullsByCommit.set('merge7', [{ number: 7, merged_at: '2026-12-07T19:00:00Z', head: { sha: 'aaa2' } }]);
    const result = await step('locate', { sha: 'merge7' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.outputs).toEqual({ 'allow-drop': 'false', pr: '7', 'run-id': '102', artifact: 'pgwarden-plan-7' });
  });

  it('allows drops only when the merged pull request carries the label', async () => {
    pullsByCommit.set('merge7l', [{ number: 7, merged_at: '2026-12-07T19:00:00Z', head: { sha: 'aaa2' }, labels: [{ name: 'pgwarden:allow-drop' }] }]);
    expect((await step('locate', { sha: 'merge7l' })).outputs['allow-drop']).toBe('true');
  });

  it('refuses to apply when the reviewed plan was made for an older head of the pull request', async () => {
    pullsByCommit.set('merge7b', [{ number: 7, merged_at: '2026-12-07T19:00:00Z', head: { sha: 'aaa3' } }]);
    const result = await step('locate', { sha: 'merge7b' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('::error title=pgwarden::the plan on pull request #7 was made for aaa2, not its last commit aaa3: nothing is applied');
  });

  it('refuses when no merged pull request has the commit', async () => {
    const result = await step('locate', { sha: 'direct-push' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no merged pull request has commit direct-push');
  });

  it('applies exactly the reviewed plan after merge and says so in the comment', async () => {
    const result = await step('apply', { sha: 'merge7', inputs: { INPUT_PR: '7' } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.outputs['exit-code']).toBe('0');
    expect(await indexExists('orders_tenant_idx')).toBe(true);
    expect(comments.get(7)).toHaveLength(1);
    expect(comments.get(7)?.[0]?.body).toMatch(/\*\*Applied\*\* after merge \(merge7\): Apply complete: 1 change/u);
    expect(comments.get(7)?.[0]?.body).toContain('create index orders_tenant_idx');
    expect(await planAgain()).toBe(0);
  });

  it('on a stale plan (the catalog moved) posts the new plan, exits 3 and applies nothing', async () => {
    await writeFile(path.join(project, 'policies', 'orders.yaml'), 'table: public.orders\nindexes:\n  - name: orders_tenant_idx\n    columns: [tenant_id]\n  - name: orders_created_idx\n    columns: [created_at]\n');
    expect((await step('plan', { event: pullRequest(8, 'bbb1'), runId: '201' })).code).toBe(0);
    // Someone changes the database between the review and the merge.
    await db.pool.query('CREATE INDEX meanwhile_idx ON orders (id, tenant_id)');
    const result = await step('apply', { sha: 'merge8', inputs: { INPUT_PR: '8' } });
    expect(result.code).toBe(3);
    expect(result.outputs['exit-code']).toBe('3');
    expect(await indexExists('orders_created_idx')).toBe(false);
    const body = comments.get(8)?.[0]?.body ?? '';
    expect(comments.get(8)).toHaveLength(1);
    expect(body).toContain('**Not applied: the database changed since this plan was reviewed**');
    expect(body).toContain('create index orders_created_idx');
    expect(body).toContain('"stale":true');
    await db.pool.query('DROP INDEX meanwhile_idx');
    await mkdir(path.join(project, 'policies'), { recursive: true });
    await writeFile(path.join(project, 'policies', 'orders.yaml'), 'table: public.orders\nindexes:\n  - name: orders_tenant_idx\n    columns: [tenant_id]\n');
    expect(await planAgain()).toBe(0);
  });
});

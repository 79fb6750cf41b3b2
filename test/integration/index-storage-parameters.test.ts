import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicies } from '../../engine/policy/load.ts';
import { parameterMove } from '../../engine/diff/index-parameter-move.ts';
import { projectWith as makeProject, writePolicy } from '../support/cli.ts';
import { convergeHelpers } from '../support/converge.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { policyDir, yaml } from '../policy/policy-dir.ts';

let db: TestDatabase;
const { sql, plan, applyAndConverge } = convergeHelpers(() => db);

beforeAll(async () => {
  db = await useTestDatabase();
  await sql(`CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.docs (id bigint PRIMARY KEY, tenant int, body tsvector, created_at timestamptz, span int4range)`);
  await sql(`CREATE TABLE app.parts (tenant int, created_at date) PARTITION BY RANGE (created_at)`);
  await sql(`CREATE TABLE app.parts_2026 PARTITION OF app.parts FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
});
const projects: string[] = [];
afterAll(async () => {
  await db.close();
  await Promise.all(projects.map((p) => rm(p, { recursive: true, force: true })));
});

async function projectWith(files: Record<string, string>): Promise<string> {
  const project = await makeProject(files);
  projects.push(project);
  return project;
}

async function reloptions(index: string): Promise<string[] | null> {
  const [row] = await sql(`SELECT reloptions FROM pg_class WHERE oid = $1::regclass`, [index]);
  return (row?.['reloptions'] as string[] | null) ?? null;
}

function docs(tenant: string, body: string, brin: string, parts: string): string {
  return yaml(
    'table: app.docs',
    'indexes:',
    '  - name: docs_tenant_idx',
    '    columns: [tenant]',
    `    with: ${tenant}`,
    '  - name: docs_body_gin',
    '    method: gin',
    '    columns: [body]',
    `    with: ${body}`,
    '  - name: docs_created_brin',
    '    method: brin',
    '    columns: [created_at]',
    `    with: ${brin}`,
    '  - name: docs_span_gist',
    '    method: gist',
    '    columns: [span]',
    '    with: { buffering: "off", fillfactor: 85 }',
    '---',
    'table: app.parts',
    'indexes:',
    '  - name: parts_tenant_idx',
    '    columns: [tenant]',
    `    with: ${parts}`,
  );
}

describe('index storage parameters', () => {
  it('are built with the index, then plan no changes', async () => {
    const project = await projectWith({ 'docs.yaml': docs('{ fillfactor: 70, deduplicate_items: off }', '{ fastupdate: false }', '{ pages_per_range: 16, autosummarize: true }', '{ fillfactor: 60 }') });
    const first = await plan(project);
    expect(first.stdout).toContain(`WITH ("fillfactor" = '70', "deduplicate_items" = 'off')`);
    await applyAndConverge(project);
    expect(await reloptions('app.docs_tenant_idx')).toEqual(['fillfactor=70', 'deduplicate_items=off']);
    expect(await reloptions('app.docs_body_gin')).toEqual(['fastupdate=false']);
    expect(await reloptions('app.docs_span_gist')).toEqual(['buffering=off', 'fillfactor=85']);
    // On a partitioned table: the parent's index and each partition's.
    expect(await reloptions('app.parts_tenant_idx')).toEqual(['fillfactor=60']);
    expect(await reloptions('app.parts_2026_parts_tenant_idx')).toEqual(['fillfactor=60']);
  });

  it('change by ALTER INDEX where that suffices, by a replace where it does not, then plan no changes', async () => {
    const project = await projectWith({ 'docs.yaml': docs('{ fillfactor: 80 }', '{ fastupdate: true, gin_pending_list_limit: 128 }', '{ pages_per_range: 32, autosummarize: true }', '{ fillfactor: 50 }') });
    const planned = await plan(project);
    expect(planned.code).toBe(2);
    expect(planned.stdout).toContain(`ALTER INDEX IF EXISTS "app"."docs_tenant_idx" SET ("fillfactor" = '80'), RESET ("deduplicate_items")`);
    expect(planned.stdout).toContain('lock:  SHARE UPDATE EXCLUSIVE on index app.docs_tenant_idx');
    expect(planned.stdout).toContain(`ALTER INDEX IF EXISTS "app"."docs_body_gin" SET ("fastupdate" = 'true', "gin_pending_list_limit" = '128')`);
    expect(planned.stdout).toContain('lock:  ACCESS EXCLUSIVE on index app.docs_body_gin');
    // BRIN reads pages_per_range from its metapage; PostgreSQL cannot alter a partitioned index's parameters.
    expect(planned.stdout).toContain('± replace index docs_created_brin on app.docs');
    expect(planned.stdout).toContain('pages_per_range takes effect only when the index is built');
    expect(planned.stdout).toContain('± replace index parts_tenant_idx on app.parts');
    expect(planned.stdout).toContain('Plan: 0 to add, 4 to change, 0 to destroy.');
    await applyAndConverge(project);
    expect(await reloptions('app.docs_tenant_idx')).toEqual(['fillfactor=80']);
    expect(await reloptions('app.docs_body_gin')).toEqual(['fastupdate=true', 'gin_pending_list_limit=128']);
    expect(await reloptions('app.docs_created_brin')).toEqual(['pages_per_range=32', 'autosummarize=true']);
    expect(await reloptions('app.parts_tenant_idx')).toEqual(['fillfactor=50']);
  });

  it('compare as PostgreSQL reads them: spellings, and an unset parameter equals its default', async () => {
    await sql(`ALTER INDEX app.docs_tenant_idx SET (fillfactor = '0x50', deduplicate_items = 'on')`);
    await sql(`ALTER INDEX app.docs_body_gin SET (fastupdate = 'ON')`);
    await sql(`ALTER INDEX app.docs_span_gist RESET (fillfactor)`);
    const project = await projectWith({ 'docs.yaml': docs('{ fillfactor: 80 }', '{ fastupdate: true, gin_pending_list_limit: 128 }', '{ pages_per_range: 32, autosummarize: true }', '{ fillfactor: 50 }').replace('fillfactor: 85', 'fillfactor: 90') });
    const same = await plan(project);
    expect(same.stdout).toContain('No changes.');
    expect(same.code).toBe(0);
    await writePolicy(project, 'docs.yaml', docs('{ fillfactor: 80 }', '{ fastupdate: true }', '{ pages_per_range: 32, autosummarize: true }', '{ fillfactor: 50 }'));
    // gin_pending_list_limit unset means "the server setting": no value equals it, so it is reset.
    const reset = await plan(project);
    expect(reset.stdout).toContain(`RESET ("gin_pending_list_limit")`);
    await applyAndConverge(project);
  });

  it('are checked against the access method with file:line:col', async () => {
    const dir = await policyDir({
      'a.yaml': yaml('table: t', 'indexes:', '  - name: i', '    columns: [a]', '    with: { fastupdate: false }', '  - name: j', '    method: gin', '    columns: [b]', '    with: { fastupdate: "yes", pages_per_range: 0 }'),
    });
    try {
      const errors = (await loadPolicies(dir.dir)).errors.map((e) => `${e.line}:${e.col}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
      expect(errors).toEqual([
        '5:13: "fastupdate" is not a storage parameter of btree indexes (it belongs to gin) (btree takes fillfactor, deduplicate_items, vacuum_cleanup_index_scale_factor)',
        '9:25: "fastupdate" must be one of on, off, got "yes"',
        '9:49: "pages_per_range" must be at least 1, got 0 (pages_per_range accepts 1 to 131072)',
      ]);
    } finally {
      await dir.remove();
    }
  });

  it('move only what differs, in PostgreSQL terms', () => {
    expect(parameterMove('btree', { fillfactor: '90' }, [])).toBeUndefined();
    expect(parameterMove('btree', {}, ['fillfactor=90', 'deduplicate_items=t'])).toBeUndefined();
    expect(parameterMove('btree', { fillfactor: '50.4' }, ['fillfactor=050'])?.set).toEqual({ fillfactor: '50.4' });
    expect(parameterMove('btree', { fillfactor: '40.5' }, ['fillfactor=40'])).toBeUndefined();
    expect(parameterMove('gin', {}, ['gin_pending_list_limit=4096'])?.reset).toEqual(['gin_pending_list_limit']);
    expect(parameterMove('brin', { pages_per_range: '64' }, [])?.rebuild).toBe(true);
  });
});

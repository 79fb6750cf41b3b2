import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IndexAdvice } from '../../engine/advisor/advise.ts';
import { planPolicyWrites, spliceEntries, writePolicyChanges } from '../../engine/advisor/policy-writer.ts';
import { loadPolicies } from '../../engine/policy/load.ts';

function advice(table: string, name: string, keys: [string, 'asc' | 'desc'][], extra: Partial<IndexAdvice> = {}): IndexAdvice {
  return {
    name,
    schema: 'public',
    table,
    keys: keys.map(([column, order]) => ({ column, order })),
    include: [],
    sql: '',
    estimatedBytes: 0,
    method: 'hypopg',
    savedMs: 1500,
    writeMs: 20,
    netMs: 1480,
    hotLostRows: 0,
    statements: [],
    ...extra,
  };
}

const EVENTS = `# yaml-language-server: $schema=../schema/policy.schema.json
#
# The high-volume table.
table: public.events

managed: partial            # keep undeclared indexes

indexes:
  # "A server's day".
  - name: events_server_created_idx
    columns: [server_id, created_at]
    method: btree                             # btree (default)

# Partitioning comes later.
---
# A second document in the same file.
table: public.servers
indexes:
- name: servers_tenant_idx
  columns: [tenant_id]
`;

const tenantIndex = advice('events', 'events_tenant_id_created_at_idx', [['tenant_id', 'asc'], ['created_at', 'desc']], { include: ['kind'] });

describe('advise --write: the policy diff', () => {
  it('adds entries at the end of the indexes list and leaves every other byte as it was', () => {
    const result = spliceEntries(EVENTS, 0, [tenantIndex]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const inserted = [
      '  # pgwarden advise: 0 statements, ~1.5 s saved in the window net of writes (planner cost with hypopg)',
      '  - name: events_tenant_id_created_at_idx',
      '    columns: [tenant_id, created_at desc]',
      '    include: [kind]',
      '',
    ].join('\n');
    // Right after the list's last entry, before the blank line that ends the section.
    const at = EVENTS.indexOf('# btree (default)\n') + '# btree (default)\n'.length;
    expect(result.text).toBe(`${EVENTS.slice(0, at)}${inserted}${EVENTS.slice(at)}`);
    expect(result.line).toBe(13);
  });

  it('follows the list\'s own indentation (dashes at the key\'s column)', () => {
    const result = spliceEntries(EVENTS, 1, [advice('servers', 'servers_region_idx', [['region', 'asc']])]);
    expect(result.ok && result.text.endsWith('  columns: [tenant_id]\n# pgwarden advise: 0 statements, ~1.5 s saved in the window net of writes (planner cost with hypopg)\n- name: servers_region_idx\n  columns: [region]\n')).toBe(true);
  });

  it('starts the list where a document has none, or an empty one', () => {
    const none = spliceEntries('table: public.events\nmanaged: partial\n', 0, [tenantIndex]);
    expect(none.ok && none.text).toContain('managed: partial\nindexes:\n  # pgwarden advise');
    const empty = spliceEntries('table: public.events\nindexes: []   # none yet\nmanaged: partial\n', 0, [tenantIndex]);
    expect(empty.ok && empty.text).toBe(
      'table: public.events\nindexes:   # none yet\n  # pgwarden advise: 0 statements, ~1.5 s saved in the window net of writes (planner cost with hypopg)\n  - name: events_tenant_id_created_at_idx\n    columns: [tenant_id, created_at desc]\n    include: [kind]\nmanaged: partial\n',
    );
  });

  it('quotes what needs quoting: names with capitals or spaces, and a partial predicate', () => {
    const odd = advice('events', 'events_user_id_idx', [['User Id', 'asc']], { where: "status <> 'resolved'" });
    const result = spliceEntries('table: public.events\n', 0, [odd]);
    expect(result.ok && result.text).toContain(`columns: ['"User Id"']`);
    expect(result.ok && result.text).toContain(`where: "status <> 'resolved'"`);
  });

  it('refuses a flow-style list, anchors and aliases, and merge keys', () => {
    expect(spliceEntries('table: public.events\nindexes: [{name: a, columns: [x]}]\n', 0, [tenantIndex])).toEqual({
      ok: false,
      reason: 'its `indexes:` is a flow sequence ([...]); pgwarden adds to block-style lists only',
    });
    expect(spliceEntries('table: public.events\nindexes: &shared\n  - name: a\n    columns: [x]\n', 0, [tenantIndex])).toMatchObject({
      ok: false,
      reason: 'the document uses YAML anchors (&name); pgwarden does not rewrite those',
    });
    expect(spliceEntries('base: &b {managed: full}\ntable: public.events\n<<: *b\n', 0, [tenantIndex])).toMatchObject({ ok: false });
  });
});

describe('advise --write on a policy directory', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function project(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-writer-'));
    await mkdir(path.join(dir, 'policies'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'policies', name), text);
    return path.join(dir, 'policies');
  }

  it('edits the file that declares the table, creates one for a table without a policy, and the result loads', async () => {
    const policies = await project({ 'events.yaml': EVENTS });
    const target = { dir: policies, displayDir: 'policies' };
    const incidents = advice('incidents', 'incidents_tenant_id_severity_opened_at_idx', [['tenant_id', 'asc'], ['severity', 'asc'], ['opened_at', 'desc']]);
    const changes = await writePolicyChanges(target, await planPolicyWrites(target, ['events.yaml'], [tenantIndex, incidents]));
    expect(changes.map((c) => [c.kind, c.file])).toEqual([
      ['edit', 'policies/events.yaml'],
      ['create', 'policies/incidents.yaml'],
    ]);
    const { desired, errors } = await loadPolicies(policies);
    expect(errors).toEqual([]);
    expect(desired.tables.find((t) => t.name === 'events')!.indexes.map((i) => i.name)).toEqual(['events_server_created_idx', 'events_tenant_id_created_at_idx']);
    expect(desired.tables.find((t) => t.name === 'incidents')!.indexes[0]!.keys).toMatchObject([{ column: 'tenant_id' }, { column: 'severity' }, { column: 'opened_at', order: 'desc' }]);
  });

  it('a file that cannot be rewritten safely is left unchanged and its snippet is returned', async () => {
    const flow = 'table: public.events\nindexes: [{name: events_server_created_idx, columns: [server_id, created_at]}]\n';
    const policies = await project({ 'events.yaml': flow });
    const target = { dir: policies, displayDir: 'policies' };
    const [change] = await writePolicyChanges(target, await planPolicyWrites(target, ['events.yaml'], [tenantIndex]));
    expect(change).toMatchObject({ kind: 'refused', file: 'policies/events.yaml', table: 'public.events' });
    expect(change!.kind === 'refused' && change!.snippet).toContain('- name: events_tenant_id_created_at_idx\n  columns: [tenant_id, created_at desc]');
    expect(await readFile(path.join(policies, 'events.yaml'), 'utf8')).toBe(flow);
  });
});

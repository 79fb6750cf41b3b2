import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apply, type ApplyEvent } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import type { Plan } from '../../engine/plan/plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { renderPlanText } from '../../engine/render/render-text.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const NOW = new Date('2026-11-20T12:00:00Z');

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

async function planOf(project: string): Promise<{ plan?: Plan; errors: string[] }> {
  const { desired, errors } = await loadPolicies(path.join(project, 'policies'));
  expect(errors).toEqual([]);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const outcome = await makePlan(client, desired, NOW);
    return outcome.ok ? { plan: outcome.plan, errors: [] } : { errors: outcome.errors.map((e) => `${e.message}${e.hint ? ` (${e.hint})` : ''}`) };
  } finally {
    await client.end();
  }
}

async function applyPolicies(project: string, options: { allowDrop?: boolean; lockTimeoutMs?: number; onEvent?: (e: ApplyEvent) => void } = {}): Promise<void> {
  const { desired } = await loadPolicies(path.join(project, 'policies'));
  await apply({
    databaseUrl: db.url,
    desired,
    allowDrop: options.allowDrop ?? false,
    lockTimeoutMs: options.lockTimeoutMs ?? 2000,
    buildTimeoutMs: 0,
    retries: 5,
    backoffMs: 50,
    now: () => NOW,
    who: { actor: 'test', gitCommit: null, gitBranch: null },
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
}

const kinds = (plan: Plan | undefined): string[] => (plan?.changes ?? []).map((c) => `${c.glyph} ${c.change.kind} ${c.change.address}`);

const POLICY = `
table: app.events
indexes:
  - name: events_tenant_created_idx
    columns: [tenant_id, created_at desc]
partitioning:
  by: range
  column: created_at
  interval: month
  premake: 2
  default_partition: true
`;

/** A plain events table with 3,000 rows over August..November 2026, a serial id, a CHECK, a view and a grant. */
async function plainEvents(): Promise<void> {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app;
    DROP ROLE IF EXISTS ${roleName()}; CREATE ROLE ${roleName()};
    CREATE TABLE app.events (
      id bigserial, tenant_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
      kind text NOT NULL DEFAULT 'ping' CHECK (kind <> ''), payload jsonb,
      PRIMARY KEY (id, created_at));
    INSERT INTO app.events (tenant_id, created_at, kind, payload)
      SELECT g % 17, timestamptz '2026-08-01 00:00:00+00' + (g * interval '1 hour'), 'k' || (g % 5), jsonb_build_object('g', g)
        FROM generate_series(1, 3000) g;
    CREATE VIEW app.recent_events AS SELECT id, kind FROM app.events WHERE created_at > '2026-10-01';
    GRANT SELECT, INSERT ON app.events TO ${roleName()};
    ANALYZE app.events;`);
}

function roleName(): string {
  return `${db.name}_reader`;
}

/** Every row of a table as text, in key order: to compare two tables row by row. */
async function rowsOf(table: string): Promise<string[]> {
  const rows = await sql(`SELECT t::text AS r FROM ${table} t ORDER BY id, created_at`);
  return rows.map((r) => String(r['r']));
}

/** pgwarden's working objects that must not outlive a conversion. */
async function leftovers(): Promise<string[]> {
  const rows = await sql(`
    SELECT 'trigger ' || tgname AS what FROM pg_trigger WHERE tgname LIKE 'pgwarden_convert%'
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'convert_capture_%'
    UNION ALL SELECT 'table ' || relname FROM pg_class WHERE relname LIKE '%_pgwarden_convert' OR relname = 'pgwarden_convert_sample'
    ORDER BY 1`);
  return rows.map((r) => String(r['what']));
}

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP ROLE IF EXISTS ${roleName()}`).catch(() => undefined);
  await db.close();
});
beforeEach(async () => {
  await plainEvents();
});

describe('converting a plain table into a partitioned one', () => {
  it('plans a convert change that says what it builds, copies and locks', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    const { plan, errors } = await planOf(project);
    expect(errors).toEqual([]);
    expect(kinds(plan)).toEqual(['± convert-table convert:app.events']);
    const text = renderPlanText(plan!, { color: false });
    expect(text).toContain('± convert app.events into a table partitioned by month on created_at (7 partitions), online');
    expect(text).toContain('partitions: events_2026_08 [2026-08-01 00:00:00+00) … events_2027_01 [2027-02-01 00:00:00+00) (6: every row\'s key from the smallest to the largest, plus premake) + events_default (default)');
    expect(text).toContain('indexes: events_tenant_created_idx; views re-pointed at the swap: app.recent_events');
    expect(text).toMatch(/copy: {2}3,000 rows, [\d.]+ kB/);
    expect(text).toMatch(/estimate: .* at [\d,]+ rows\/s \(a timed sample/);
    expect(text).toContain('lock:  ACCESS EXCLUSIVE on app.events (at the swap, renames only');
    expect(text).toContain('keeps: app.events_unpartitioned, the old table, until apply --allow-drop');
    // Planning left nothing behind (the timed sample is rolled back).
    expect(await leftovers()).toEqual([]);
  });

  it('converts it, keeps every row, the sequence, the view and the grants, and converges', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    const before = await rowsOf('app.events');
    await applyPolicies(project);
    const kind = await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`);
    expect(kind[0]?.['relkind']).toBe('p');
    expect(await rowsOf('app.events')).toEqual(before);
    expect(await rowsOf('app.events_unpartitioned')).toEqual(before);
    const perPartition = await sql(`SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM app.events GROUP BY 1 ORDER BY 1`);
    expect(perPartition.map((r) => r['p'])).toEqual(['app.events_2026_08', 'app.events_2026_09', 'app.events_2026_10', 'app.events_2026_11', 'app.events_2026_12']);
    // The serial keeps counting where it was, and belongs to the new table now.
    const [next] = await sql(`INSERT INTO app.events (tenant_id, created_at) VALUES (1, '2026-11-20') RETURNING id`);
    expect(Number(next?.['id'])).toBe(3001);
    const [owner] = await sql(`SELECT d.refobjid::regclass::text AS t FROM pg_depend d WHERE d.objid = 'app.events_id_seq'::regclass AND d.deptype = 'a'`);
    expect(owner?.['t']).toBe('app.events');
    // The view reads the new table; the grant came along; the CHECK and default too.
    const [view] = await sql(`SELECT count(*)::int AS n FROM app.recent_events`);
    expect(view?.['n']).toBeGreaterThan(1000);
    const deps = await sql(`SELECT DISTINCT d.refobjid::regclass::text AS t FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                             WHERE r.ev_class = 'app.recent_events'::regclass AND d.refobjid <> 'app.recent_events'::regclass`);
    expect(deps.map((r) => r['t'])).toEqual(['app.events']);
    const [grant] = await sql(`SELECT has_table_privilege($1, 'app.events', 'INSERT') AS ok`, [roleName()]);
    expect(grant?.['ok']).toBe(true);
    await expect(sql(`INSERT INTO app.events (tenant_id, kind) VALUES (1, '')`)).rejects.toThrow(/check constraint/);
    expect(await leftovers()).toEqual([]);
    // What is left to do is dropping the old table, which needs --allow-drop; after it, nothing.
    const { plan } = await planOf(project);
    expect(kinds(plan)).toEqual(['- drop-unpartitioned convert:app.events.events_unpartitioned']);
    await expect(applyPolicies(project)).rejects.toThrow(/--allow-drop|drops or detaches/);
    await applyPolicies(project, { allowDrop: true });
    const after = await planOf(project);
    expect(renderPlanText(after.plan!, { color: false })).toContain('No changes.');
  });
});

describe('a conversion and the routing policy', () => {
  it('watches the standby\'s replay lag against max_lag_ms while it copies', async () => {
    const routing = ['routing:', '  replicas:', '    - name: standby1', '      url_env: REPLICA_URL', '  max_lag_ms: 250', ''].join('\n');
    const project = await projectWith({ 'events.yaml': POLICY, 'routing.yaml': routing });
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const env = { REPLICA_URL: db.standbyUrl || db.url };
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const outcome = await makePlan(client, desired, NOW, { env }).finally(() => client.end());
    if (!outcome.ok) throw new Error(outcome.errors.map((e) => e.message).join('; '));
    const convert = outcome.plan.changes.find((c) => c.change.kind === 'convert-table');
    expect(convert?.change.kind === 'convert-table' && convert.change.maxLagMs).toBe(250);
    expect(renderPlanText(outcome.plan, { color: false })).toContain('paused while a standby lags more than 250 ms (routing max_lag_ms)');
    const before = await rowsOf('app.events');
    await apply({
      databaseUrl: db.url,
      desired,
      allowDrop: false,
      lockTimeoutMs: 2000,
      buildTimeoutMs: 0,
      retries: 5,
      backoffMs: 50,
      now: () => NOW,
      env,
      who: { actor: 'test', gitCommit: null, gitBranch: null },
      select: (c) => c.change.kind === 'convert-table',
    });
    expect(await rowsOf('app.events')).toEqual(before);
    expect(await leftovers()).toEqual([]);
    // The rest of the plan (the old table's drop, the routing policy's tables), then nothing is left.
    await apply({ databaseUrl: db.url, desired, allowDrop: true, lockTimeoutMs: 2000, buildTimeoutMs: 0, retries: 5, backoffMs: 50, now: () => NOW, env, who: { actor: 'test', gitCommit: null, gitBranch: null } });
    const again = new pg.Client({ connectionString: db.url });
    await again.connect();
    const last = await makePlan(again, desired, NOW, { env }).finally(() => again.end());
    expect(last.ok && renderPlanText(last.plan, { color: false })).toContain('No changes.');
  });
});

describe('what the plan refuses to convert, read from the catalog', () => {
  it('lists every reason at the partitioning line, and changes nothing', async () => {
    await sql(`CREATE TABLE app.legacy (id bigint PRIMARY KEY, ref text UNIQUE, created_at timestamptz, kind text);
      INSERT INTO app.legacy SELECT g, 'r' || g, CASE WHEN g % 100 = 0 THEN NULL ELSE now() END, 'k' FROM generate_series(1, 500) g;
      CREATE TABLE app.alerts (id bigint, legacy_id bigint REFERENCES app.legacy (id));
      CREATE RULE legacy_no_delete AS ON DELETE TO app.legacy DO INSTEAD NOTHING;
      CREATE TABLE app.legacy_archive () INHERITS (app.legacy);
      CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      CREATE TRIGGER legacy_touch BEFORE UPDATE ON app.legacy FOR EACH ROW EXECUTE FUNCTION app.touch();`);
    const project = await projectWith({ 'legacy.yaml': 'table: app.legacy\npartitioning:\n  by: range\n  column: created_at\n  interval: month\n' });
    const result = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(1);
    const lines = result.stderr.split('\n').filter((l) => l.startsWith('policies/legacy.yaml:2:1: partitioning: cannot convert app.legacy online: '));
    const reasons = lines.map((l) => l.replace('policies/legacy.yaml:2:1: partitioning: cannot convert app.legacy online: ', '').split(/[;(]/)[0]!.trim());
    expect(reasons).toEqual([
      'its primary key legacy_pkey',
      'its unique constraint legacy_ref_key',
      'foreign key alerts_legacy_id_fkey on app.alerts references',
      '5 row',
      'it has rules',
      'tables inherit from it',
      'it has triggers',
    ]);
    expect(result.stderr).toContain('the key would have to be (id, created_at)');
    expect(result.stderr).toContain('references (id), which the partitioned table cannot keep unique: every primary key and unique constraint of a partitioned table must include the partition key created_at');
    expect(result.stderr).toContain('5 row(s) have a NULL created_at, and only a default partition takes NULL keys');
    expect(await leftovers()).toEqual([]);
    const [kind] = await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.legacy'::regclass`);
    expect(kind?.['relkind']).toBe('r');
  });
});

describe('a table and sequence owned by another role than the one applying', () => {
  it('refuses while the sequence cannot be linked to the new table, and converts after the fix the plan gives', async () => {
    const role = `convert_owner_${db.name.slice(-10)}`;
    await sql(`CREATE ROLE ${role};
      CREATE TABLE app.owned (id bigserial, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at));
      INSERT INTO app.owned (created_at) SELECT timestamptz '2026-10-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 200) g;
      ALTER TABLE app.owned OWNER TO ${role};`);
    try {
      const [me] = await sql(`SELECT current_user::text AS me`);
      const applying = String(me?.['me']);
      const project = await projectWith({ 'owned.yaml': 'table: app.owned\npartitioning:\n  by: range\n  column: created_at\n  interval: month\n' });
      // ALTER TABLE ... OWNER moved the serial's sequence too: it belongs to the role, not to the one applying.
      const refused = await planOf(project);
      expect(refused.errors).toEqual([
        `partitioning: cannot convert app.owned online: its column id takes values from app.owned_id_seq, owned by ${role}; the swap links that sequence to the new table (ALTER SEQUENCE ... OWNED BY), which PostgreSQL allows only when both have the same owner, and the new table will be owned by ${applying}, the role applying (apply as ${role}, or give the table to ${applying} first (its sequences follow): ALTER TABLE app.owned OWNER TO ${applying})`,
      ]);
      // The fix the plan gives.
      await sql(`ALTER TABLE app.owned OWNER TO ${applying}`);
      const planned = await planOf(project);
      expect(planned.errors).toEqual([]);
      expect(kinds(planned.plan)).toEqual(['± convert-table convert:app.owned']);
      expect(planned.plan?.warnings.map((w) => w.message).filter((m) => m.includes(' is owned by '))).toEqual([]);
      await applyPolicies(project);
      const [after] = await sql(`SELECT c.relkind, pg_get_userbyid(c.relowner) AS owner, pg_get_serial_sequence('app.owned', 'id') AS seq FROM pg_class c WHERE c.oid = 'app.owned'::regclass`);
      expect(after).toEqual({ relkind: 'p', owner: applying, seq: 'app.owned_id_seq' });
      expect((await sql(`SELECT count(*)::int AS n FROM app.owned`))[0]?.['n']).toBe(200);
      await applyPolicies(project, { allowDrop: true });
      expect(kinds((await planOf(project)).plan)).toEqual([]);
    } finally {
      await sql(`DROP TABLE IF EXISTS app.owned, app.owned_unpartitioned CASCADE; DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});

describe('a foreign key that references the table by columns that include the partition key', () => {
  it('is re-pointed at the partitioned table in the swap and validated after, and still cascades', async () => {
    await sql(`CREATE TABLE app.orders (id bigserial, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at));
      INSERT INTO app.orders (created_at) SELECT timestamptz '2026-10-01 00:00:00+00' + g * interval '1 hour' FROM generate_series(1, 300) g;
      CREATE TABLE app.order_lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL, order_at timestamptz NOT NULL,
        CONSTRAINT order_lines_order_fkey FOREIGN KEY (order_id, order_at) REFERENCES app.orders (id, created_at) ON DELETE CASCADE);
      INSERT INTO app.order_lines (order_id, order_at) SELECT id, created_at FROM app.orders;`);
    try {
      const project = await projectWith({ 'orders.yaml': 'table: app.orders\npartitioning:\n  by: range\n  column: created_at\n  interval: month\n' });
      const planned = await planOf(project);
      expect(planned.errors).toEqual([]);
      expect(kinds(planned.plan)).toEqual(['± convert-table convert:app.orders']);
      expect(renderPlanText(planned.plan!, { color: false })).toContain('re-points: order_lines_order_fkey on app.order_lines at the new table in the swap (NOT VALID');
      const notices: string[] = [];
      await applyPolicies(project, { onEvent: (e) => void (e.type === 'notice' && notices.push(e.message)) });
      expect(notices).toContain('validated 1 foreign key(s) that reference app.orders');
      const [fk] = await sql(`SELECT confrelid::regclass::text AS target, convalidated, c.relkind FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid WHERE k.conname = 'order_lines_order_fkey' AND k.conrelid = 'app.order_lines'::regclass`);
      expect(fk).toEqual({ target: 'app.orders', convalidated: true, relkind: 'p' });
      // Enforced against the new table, both ways.
      await expect(sql(`INSERT INTO app.order_lines (order_id, order_at) VALUES (999999, '2026-10-02 00:00:00+00')`)).rejects.toThrow('violates foreign key constraint "order_lines_order_fkey"');
      await sql(`DELETE FROM app.orders WHERE id <= 10`);
      expect((await sql(`SELECT count(*)::int AS n FROM app.order_lines`))[0]?.['n']).toBe(290);
      // The old table is referenced by nothing any more: --allow-drop drops it, and nothing is left to do.
      await applyPolicies(project, { allowDrop: true });
      expect((await sql(`SELECT to_regclass('app.orders_unpartitioned') IS NULL AS gone`))[0]?.['gone']).toBe(true);
      expect(kinds((await planOf(project)).plan)).toEqual([]);
    } finally {
      await sql(`DROP TABLE IF EXISTS app.order_lines, app.orders, app.orders_unpartitioned CASCADE`);
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { Actual } from '../../engine/catalog/actual.ts';
import { definitionTargets } from '../../engine/catalog/actual-probes.ts';
import type { Canonical } from '../../engine/catalog/canonicalise.ts';
import type { ActualIndex, ActualTable, Catalog, IndexSignature } from '../../engine/catalog/catalog.ts';
import { diffAll } from '../../engine/diff/diff-all.ts';
import type { DesiredIndex, DesiredState, DesiredTable } from '../../engine/policy/desired.ts';

// The index diff on values alone: no database, no clock but the one passed in.

const at = { file: 'policies/orders.yaml', line: 3, col: 5 };
const now = new Date('2026-11-25T10:00:00Z');

function signature(...columns: string[]): IndexSignature {
  return { method: 'btree', unique: false, nullsNotDistinct: false, keys: columns.map((column) => ({ column, expression: null, opclass: 1978, collation: 0, option: 0 })), include: [], predicate: null };
}

function declared(name: string, ...columns: string[]): DesiredIndex {
  return { schema: 'app', table: 'orders', name, method: 'btree', unique: false, nullsNotDistinct: false, keys: columns.map((column) => ({ kind: 'column', column, order: 'asc', nulls: 'last' })), include: [], source: at };
}

function desired(indexes: DesiredIndex[], managed: DesiredTable['managed'] = 'partial'): DesiredState {
  return { files: ['orders.yaml'], tables: [{ schema: 'app', name: 'orders', managed, indexes, source: at }] };
}

const ORDERS: ActualTable = {
  oid: 10, schema: 'app', name: 'orders', kind: 'table', parentOid: null, partitionBound: null, partitionKey: null,
  rowEstimate: 1000, bytes: 65536, reloptions: [], toastReloptions: null, owner: 'app', actsAsOwner: true, createsInSchema: true,
};

let nextOid = 100;
function live(name: string, sig: IndexSignature, extra: Partial<ActualIndex> = {}): ActualIndex {
  nextOid += 1;
  return { oid: nextOid, schema: 'app', name, tableOid: ORDERS.oid, valid: true, primary: false, constraintType: null, parentIndexOid: null, signature: sig, reloptions: [], bytes: 8192, scans: 0, ...extra };
}

/** What readActual would have read: the catalog, and PostgreSQL's signature for each declared index. */
function actual(indexes: ActualIndex[], declarations: DesiredIndex[], options: { managed?: string[]; definitions?: Record<string, string> } = {}): Actual {
  const catalog: Catalog = {
    database: 'app', serverVersion: 160000, tables: [ORDERS], indexes,
    managed: (options.managed ?? []).map((name) => ({ schema: 'app', name, table: 'orders', policyFile: 'orders.yaml', specHash: null, signature: null })),
    relationNames: new Map([['app', new Set(['orders', ...indexes.map((i) => i.name)])]]),
  };
  const canonical = new Map<string, Canonical>(declarations.map((d) => [`app\u0000${d.name}`, { ok: true, signature: signature(...d.keys.map((k) => (k.kind === 'column' ? k.column : k.expression))) }]));
  const definitions = new Map(Object.entries(options.definitions ?? {}).map(([name, def]) => [`app\u0000${name}`, def]));
  return { catalog, canonical, partitions: [], retired: [], defaultRows: [], indexDefinitions: definitions, routing: null, tableStatistics: null };
}

function kinds(state: DesiredState, act: Actual): string[] {
  const diff = diffAll(state, act, now);
  expect(diff.errors).toEqual([]);
  return diff.changes.map((c) => `${c.kind} ${c.address}`);
}

describe('the index diff, without a database', () => {
  it('creates a declared index that is missing', () => {
    const d = [declared('orders_customer_idx', 'customer_id')];
    expect(kinds(desired(d), actual([], d))).toEqual(['create-index index:app.orders.orders_customer_idx']);
  });

  it('has nothing to do when the managed index matches its declaration', () => {
    const d = [declared('orders_customer_idx', 'customer_id')];
    expect(kinds(desired(d), actual([live('orders_customer_idx', signature('customer_id'))], d, { managed: ['orders_customer_idx'] }))).toEqual([]);
  });

  it('adopts an identical index it did not create, instead of building it again', () => {
    const d = [declared('orders_customer_idx', 'customer_id')];
    expect(kinds(desired(d), actual([live('orders_customer_idx', signature('customer_id'))], d))).toEqual(['adopt-index index:app.orders.orders_customer_idx']);
  });

  it('replaces an index whose definition differs from the policy', () => {
    const d = [declared('orders_customer_idx', 'customer_id', 'created_at')];
    const act = actual([live('orders_customer_idx', signature('customer_id'))], d, { managed: ['orders_customer_idx'] });
    expect(kinds(desired(d), act)).toEqual(['replace-index index:app.orders.orders_customer_idx']);
  });

  it('renames an equivalent index standing under another name rather than building a new one', () => {
    const d = [declared('orders_customer_idx', 'customer_id')];
    expect(kinds(desired(d), actual([live('legacy_customer', signature('customer_id'))], d))).toEqual(['rename-index index:app.orders.orders_customer_idx']);
  });

  it('rebuilds an INVALID index left by a failed concurrent build', () => {
    const d = [declared('orders_customer_idx', 'customer_id')];
    const act = actual([live('orders_customer_idx', signature('customer_id'), { valid: false })], d, { managed: ['orders_customer_idx'] });
    expect(kinds(desired(d), act)).toEqual(['rebuild-index index:app.orders.orders_customer_idx']);
  });

  it('drops an index it created once no policy declares it, and only reports one it did not', () => {
    const act = actual([live('orders_old_idx', signature('status')), live('someone_elses_idx', signature('total'))], [], { managed: ['orders_old_idx'] });
    const diff = diffAll(desired([]), act, now);
    expect(diff.changes.map((c) => c.kind === 'drop-index' && [c.address, c.destructive])).toEqual([['index:app.orders.orders_old_idx', true]]);
    expect(diff.warnings.map((w) => w.address)).toEqual(['index:app.orders.someone_elses_idx']);
  });

  it('reports a declared table the database lacks as an error at the policy line', () => {
    const state: DesiredState = { files: ['x.yaml'], tables: [{ schema: 'app', name: 'missing', managed: 'partial', indexes: [], source: at }] };
    const diff = diffAll(state, actual([], []), now);
    expect(diff.errors).toEqual([expect.objectContaining({ file: at.file, line: 3, col: 5, message: 'table app.missing does not exist in database app' })]);
  });

  it('shows the definition readActual fetched for the live index a change acts on', () => {
    const d = [declared('orders_customer_idx', 'customer_id', 'created_at')];
    const act = actual([live('orders_customer_idx', signature('customer_id'))], d, {
      managed: ['orders_customer_idx'],
      definitions: { orders_customer_idx: 'CREATE INDEX orders_customer_idx ON app.orders USING btree (customer_id)' },
    });
    const [change] = diffAll(desired(d), act, now).changes;
    expect(change && 'actual' in change && change.actual).toMatchObject({ name: 'orders_customer_idx', definition: 'CREATE INDEX orders_customer_idx ON app.orders USING btree (customer_id)' });
  });
});

describe('which definitions readActual fetches', () => {
  it('fetches none in the steady state, and exactly the indexes the changes alter or remove otherwise', () => {
    const d = [declared('orders_customer_idx', 'customer_id'), declared('orders_status_idx', 'status'), declared('orders_total_idx', 'total')];
    const indexes = [
      live('orders_customer_idx', signature('customer_id')), // managed and matching: no change
      live('orders_status_idx', signature('status')), // not managed: adopted, definition not fetched
      live('legacy_total', signature('total')), // the twin of orders_total_idx: renamed
      live('unrelated_idx', signature('note')), // reported only
      live('orders_pkey', signature('id'), { constraintType: 'p', primary: true }), // a constraint's: never acted on
    ];
    const act = actual(indexes, d, { managed: ['orders_customer_idx'] });
    const changes = diffAll(desired(d), act, now).changes;
    expect(changes.map((c) => c.kind).sort()).toEqual(['adopt-index', 'rename-index']);
    // An adoption leaves the index as it is: its definition is the declared one, not fetched.
    const acted = changes.flatMap((c) => (c.kind !== 'adopt-index' && 'actual' in c && c.actual && 'valid' in c.actual ? [c.actual.name] : []));
    expect(acted).toEqual(['legacy_total']);
    expect(definitionTargets(desired(d), act.catalog, act.canonical).map((t) => t.name).sort()).toEqual(acted.sort());
    const steady = actual([live('orders_customer_idx', signature('customer_id'))], d.slice(0, 1), { managed: ['orders_customer_idx'] });
    expect(definitionTargets(desired(d.slice(0, 1)), steady.catalog, steady.canonical)).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { ConversionFacts, KeyRange } from '../../engine/catalog/conversion-queries.ts';
import { diffConversion, MAX_NEW_PARTITIONS, type ConversionInput } from '../../engine/diff/convert-change.ts';
import type { DesiredTable } from '../../engine/policy/desired.ts';
import type { DesiredPartitioning } from '../../engine/policy/partitioning-policy.ts';

/** The refusals and decisions of a conversion, from facts alone: no database. */
const at = { file: 'policies/events.yaml', line: 2, col: 1 };
const now = new Date('2026-11-20T12:00:00Z');

function policy(extra: Partial<DesiredPartitioning> = {}): DesiredPartitioning {
  return { by: 'range', column: 'created_at', interval: 'month', premake: 2, defaultPartition: false, naming: '{table}_{YYYY}_{MM}', source: at, columnSource: at, ...extra };
}

function facts(extra: Partial<ConversionFacts> = {}): ConversionFacts {
  return {
    schema: 'app',
    name: 'events',
    oid: 16400,
    relkind: 'r',
    owner: 'app',
    applyingRole: 'app',
    ownerPrivileges: true,
    rowEstimate: 1000,
    bytes: 1 << 20,
    heapBytes: 1 << 19,
    columns: [
      { name: 'id', type: 'bigint', notNull: true, identity: '', generated: false, sequence: '"app"."events_id_seq"', sequenceOwner: 'app' },
      { name: 'created_at', type: 'timestamp with time zone', notNull: true, identity: '', generated: false, sequence: null, sequenceOwner: null },
      { name: 'kind', type: 'text', notNull: false, identity: '', generated: false, sequence: null, sequenceOwner: null },
    ],
    keys: [{ name: 'events_pkey', type: 'p', columns: ['id', 'created_at'], definition: 'PRIMARY KEY (id, created_at)' }],
    noInheritChecks: [],
    foreignKeysOut: [],
    foreignKeysIn: [],
    views: [],
    rules: [],
    inheritanceChildren: [],
    inheritanceParents: [],
    userTriggers: [],
    replicaIdentity: 'd',
    plainIndexes: [],
    grants: [],
    publications: [],
    record: null,
    newTableExists: false,
    captureTriggerExists: false,
    ...extra,
  };
}

const RANGE: KeyRange = { minMs: Date.parse('2026-08-10T00:00:00Z'), maxMs: Date.parse('2026-11-19T00:00:00Z'), nullKeys: 0, sampleRowsPerSecond: 50_000, sampleRows: 1000, rows: 1000 };

function input(extra: Partial<ConversionInput> & { partitioning?: Partial<DesiredPartitioning> } = {}): ConversionInput {
  const p = policy(extra.partitioning);
  const table: DesiredTable = { schema: 'app', name: 'events', managed: 'partial', indexes: [], source: at, partitioning: p };
  return { table, policy: p, facts: facts(), keyType: 'timestamptz', range: RANGE, taken: [], now, serverVersion: 160000, maxLagMs: null, storageParameters: {}, ...extra };
}

const messages = (i: ConversionInput): string[] => diffConversion(i).errors.map((e) => `${e.message}${e.hint ? ` (${e.hint})` : ''}`);

describe('what a conversion creates', () => {
  it('covers every row from the smallest key to the largest, plus premake, and estimates the copy from the sample', () => {
    const { change, errors } = diffConversion(input());
    expect(errors).toEqual([]);
    expect(change?.partitions.map((p) => p.name)).toEqual(['events_2026_08', 'events_2026_09', 'events_2026_10', 'events_2026_11', 'events_2026_12', 'events_2027_01']);
    expect(change?.partitions[0]).toEqual({ name: 'events_2026_08', from: '2026-08-01 00:00:00+00', to: '2026-09-01 00:00:00+00' });
    expect(change?.estimateSeconds).toBeCloseTo(0.02);
    expect(change?.newName).toBe('events_pgwarden_convert');
    expect(change?.oldName).toBe('events_unpartitioned');
    // The key constraint is built under a temporary name and takes the old one's at the swap.
    expect(change?.newRenames).toEqual([{ from: 'events_pkey_pgwarden_new', to: 'events_pkey' }]);
    expect(change?.oldRenames).toEqual([{ from: 'events_pkey', to: 'events_pkey_unpartitioned' }]);
  });

  it('resumes a copy an earlier apply left, for the same table', () => {
    const record = { relid: 16400, newName: 'events_pgwarden_convert', oldName: 'events_unpartitioned', phase: 'copying' as const, watermark: ['500', '2026-09-01 00:00:00+00'], rowsCopied: 500 };
    const resumed = diffConversion(input({ facts: facts({ record, newTableExists: true, captureTriggerExists: true }), taken: ['events_pgwarden_convert', 'events_2026_08'] }));
    expect(resumed.errors).toEqual([]);
    expect(resumed.change?.resume).toEqual({ watermark: ['500', '2026-09-01 00:00:00+00'], rowsCopied: 500 });
    expect(resumed.change?.cleanup).toBe(false);
    // The table was dropped and created again since: its leftovers are dropped and the copy starts over.
    const other = diffConversion(input({ facts: facts({ oid: 99999, record, newTableExists: true, captureTriggerExists: false }), taken: ['events_pgwarden_convert'] }));
    expect(other.change?.resume).toBeNull();
    expect(other.change?.cleanup).toBe(true);
  });
});

describe('what a conversion refuses, with the reason', () => {
  it('a table without a primary key (a replica identity does not help: capture is a trigger)', () => {
    expect(messages(input({ facts: facts({ keys: [], replicaIdentity: 'f' }) }))).toEqual([
      'partitioning: cannot convert app.events online: it has no primary key; the copy walks the table in primary-key order and the capture trigger applies each change to the new table by that key (add one that includes created_at, e.g. ALTER TABLE app.events ADD PRIMARY KEY (id, created_at) (a replica identity alone does not help: pgwarden captures changes with a trigger, not logical decoding))',
    ]);
  });

  it('a primary key without the partition key, showing the key it would need', () => {
    const keys = [{ name: 'events_pkey', type: 'p' as const, columns: ['id'], definition: 'PRIMARY KEY (id)' }];
    const [message] = messages(input({ facts: facts({ keys }) }));
    expect(message).toContain('its primary key events_pkey (id) does not include the partition key created_at');
    expect(message).toContain('the key would have to be (id, created_at)');
  });

  it('a unique constraint without the partition key', () => {
    const keys = [...facts().keys, { name: 'events_ref_key', type: 'u' as const, columns: ['ref'], definition: 'UNIQUE (ref)' }];
    expect(messages(input({ facts: facts({ keys }) }))[0]).toContain('its unique constraint events_ref_key (ref) does not include the partition key created_at; a partitioned table cannot enforce it (it would have to be (ref, created_at)');
  });

  it('foreign keys that reference the table: refused when they cannot follow it, with why; re-pointed when they can; none before PostgreSQL 12', () => {
    const alerts = { name: 'alerts_event_fkey', schema: 'app', table: 'alerts', definition: 'FOREIGN KEY (event_id) REFERENCES app.events(id)', referencedColumns: ['id'] };
    const notes = { name: 'notes_event_fkey', schema: 'app', table: 'notes', definition: 'FOREIGN KEY (event_id, event_at) REFERENCES app.events(id, created_at)', referencedColumns: ['id', 'created_at'] };
    const itself = { name: 'events_parent_fkey', schema: 'app', table: 'events', definition: 'FOREIGN KEY (parent_id, created_at) REFERENCES app.events(id, created_at)', referencedColumns: ['id', 'created_at'] };
    expect(messages(input({ facts: facts({ foreignKeysIn: [alerts, notes, itself] }) }))).toEqual([
      'partitioning: cannot convert app.events online: foreign key alerts_event_fkey on app.alerts references (id), which the partitioned table cannot keep unique: every primary key and unique constraint of a partitioned table must include the partition key created_at, and PostgreSQL points a foreign key only at one of them (the referencing rows would have to carry created_at too and reference (id, created_at); or drop alerts_event_fkey first (ALTER TABLE app.alerts DROP CONSTRAINT alerts_event_fkey))',
      'partitioning: cannot convert app.events online: foreign key events_parent_fkey on app.events references (id, created_at) from the table itself; the new table would have to carry it during the copy, which pgwarden does not do (drop it (ALTER TABLE app.events DROP CONSTRAINT events_parent_fkey), convert, then add it again)',
    ]);
    const result = diffConversion(input({ facts: facts({ foreignKeysIn: [notes] }) }));
    expect(result.errors).toEqual([]);
    expect(result.change?.referencingKeys).toEqual([notes]);
    expect(messages(input({ facts: facts({ foreignKeysIn: [notes] }), serverVersion: 110000 }))[0]).toContain(
      'foreign keys reference it (notes_event_fkey on app.notes), and PostgreSQL before 12 cannot point a foreign key at a partitioned table',
    );
  });

  it('a serial sequence the applying role does not own, a table whose owner it has no privileges of; and a warning when the new table changes owner', () => {
    expect(messages(input({ facts: facts({ applyingRole: 'deployer' }) }))).toEqual([
      'partitioning: cannot convert app.events online: its column id takes values from "app"."events_id_seq", owned by app; the swap links that sequence to the new table (ALTER SEQUENCE ... OWNED BY), which PostgreSQL allows only when both have the same owner, and the new table will be owned by deployer, the role applying (apply as app, or give the table to deployer first (its sequences follow): ALTER TABLE app.events OWNER TO deployer)',
    ]);
    expect(messages(input({ facts: facts({ applyingRole: 'reader', ownerPrivileges: false }) }))[0]).toBe(
      'partitioning: cannot convert app.events online: the role applying (reader) is neither its owner app nor a member of that role; the conversion puts a trigger on it and the swap renames it, which only its owner may (apply as app, or make reader a member: GRANT app TO reader)',
    );
    const columns = facts().columns.map((c) => (c.sequence === null ? c : { ...c, sequenceOwner: 'deployer' }));
    const result = diffConversion(input({ facts: facts({ applyingRole: 'deployer', columns }) }));
    expect(result.errors).toEqual([]);
    expect(result.warnings.map((w) => w.message)).toEqual([
      'app.events is owned by app; the partitioned table that replaces it will be owned by deployer, the role applying, and app gets no privilege on it (grants to other roles are carried over): apply as app, or ALTER TABLE app.events OWNER TO app after the swap',
    ]);
  });

  it('rows with a NULL key unless a default partition takes them', () => {
    const range = { ...RANGE, nullKeys: 3 };
    expect(messages(input({ range }))).toEqual(['partitioning: cannot convert app.events online: 3 row(s) have a NULL created_at, and only a default partition takes NULL keys (set default_partition: true, or give those rows a value first)']);
    expect(messages(input({ range, partitioning: { defaultPartition: true } }))).toEqual([]);
  });

  it('rules, inheritance, user triggers, NO INHERIT checks and materialized views', () => {
    const all = messages(
      input({
        facts: facts({
          rules: ['events_log'],
          inheritanceChildren: ['app.events_archive'],
          inheritanceParents: ['app.base'],
          userTriggers: ['events_audit'],
          noInheritChecks: ['events_local_check'],
          views: [{ schema: 'app', name: 'daily', kind: 'm', oid: 1, definition: '' }],
        }),
      }),
    );
    expect(all.map((m) => m.replace(/^partitioning: cannot convert app\.events online: /, '').split(/[;(]/)[0]!.trim())).toEqual([
      'it has rules',
      'tables inherit from it',
      'it inherits from app.base',
      'it has triggers',
      'its CHECK constraints events_local_check are NO INHERIT, which a partitioned table refuses',
      'materialized views read it',
    ]);
  });

  it('an identity column before PostgreSQL 17', () => {
    const columns = facts().columns.map((c) => (c.name === 'id' ? { ...c, identity: 'a' as const } : c));
    expect(messages(input({ facts: facts({ columns }) }))[0]).toContain('its column id is an identity column; before PostgreSQL 17');
    expect(messages(input({ facts: facts({ columns }), serverVersion: 170000 }))).toEqual([]);
  });

  it('names it would create that another relation holds, and a key range over too many partitions', () => {
    expect(messages(input({ taken: ['events_2026_09'] }))).toEqual([
      'partitioning: cannot convert app.events online: app.events_2026_09 already exists, and the conversion would create it (rename or drop them first)',
    ]);
    const wide = { ...RANGE, minMs: Date.parse('1900-01-01T00:00:00Z') };
    expect(messages(input({ range: wide }))[0]).toContain(`the key created_at spans more than ${MAX_NEW_PARTITIONS} months`);
  });

  it('warns of indexes the policy does not declare (they stay behind) and of partitions retention will take', () => {
    const { warnings } = diffConversion(
      input({ facts: facts({ plainIndexes: ['events_kind_idx'] }), partitioning: { retention: { keep: 2, then: 'detach', source: at } } }),
    );
    expect(warnings.map((w) => w.message)).toEqual([
      'index events_kind_idx on app.events is not declared in the policy and is not carried over to the partitioned table (it stays on the old table)',
      '1 of the new partitions of app.events are older than retention keeps (2 months); once converted, the next plan detaches them',
    ]);
  });
});

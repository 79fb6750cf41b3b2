import { describe, expect, it } from 'vitest';
import type { ActualTable, Catalog } from '../../engine/catalog/catalog.ts';
import { diffStorageParameters, sameSettingValue, type ManagedSettings } from '../../engine/diff/vacuum-settings.ts';
import { storageSteps } from '../../engine/plan/storage-steps.ts';
import type { DesiredState, DesiredTable, ManagedMode, SourcePos } from '../../engine/policy/desired.ts';
import type { DesiredVacuum } from '../../engine/policy/vacuum-policy.ts';

const at = (line: number): SourcePos => ({ file: 'policies/t.yaml', line, col: 3 });

let nextOid = 1000;
function table(name: string, options: Partial<ActualTable> = {}): ActualTable {
  nextOid += 1;
  return {
    oid: nextOid,
    schema: 'public',
    name,
    kind: 'table',
    parentOid: null,
    partitionBound: null,
    partitionKey: null,
    rowEstimate: 100,
    bytes: 8192,
    reloptions: [],
    toastReloptions: [],
    owner: 'app',
    actsAsOwner: true,
    createsInSchema: true,
    ...options,
  };
}

function catalog(tables: readonly ActualTable[]): Catalog {
  return { database: 'app', serverVersion: 160000, tables, indexes: [], managed: [], relationNames: new Map() };
}

function vacuum(settings: Record<string, string>, extra: Partial<DesiredVacuum> = {}): DesiredVacuum {
  return { settings: Object.entries(settings).map(([parameter, value], i) => ({ parameter, value, source: at(3 + i) })), source: at(2), ...extra };
}

function policy(name: string, v: DesiredVacuum | undefined, managed: ManagedMode = 'partial'): DesiredTable {
  return { schema: 'public', name, managed, indexes: [], source: at(1), ...(v === undefined ? {} : { vacuum: v }) };
}

function desired(tables: readonly DesiredTable[], defaults?: DesiredVacuum): DesiredState {
  return { tables, files: ['t.yaml'], ...(defaults === undefined ? {} : { vacuumDefaults: defaults }) };
}

const none: ManagedSettings = new Map();
const recorded = (name: string, ...parameters: string[]): ManagedSettings => new Map([[`public\u0000${name}`, new Set(parameters)]]);

describe('the storage-parameter diff', () => {
  it('sets a declared parameter the table lacks, and records it as managed', () => {
    const diff = diffStorageParameters(desired([policy('jobs', vacuum({ autovacuum_vacuum_scale_factor: '0.02' }))]), catalog([table('jobs')]), none);

    expect(diff.changes).toHaveLength(1);
    const [change] = diff.changes;
    expect(change?.address).toBe('storage:public.jobs');
    expect(change?.settings).toEqual([{ parameter: 'autovacuum_vacuum_scale_factor', before: null, after: '0.02' }]);
    expect(change?.relations).toEqual([{ schema: 'public', name: 'jobs', set: [{ parameter: 'autovacuum_vacuum_scale_factor', value: '0.02' }], reset: [] }]);
    expect(change?.managed).toEqual(['autovacuum_vacuum_scale_factor']);
    expect(change?.source).toEqual(at(3));
  });

  it('compares values as PostgreSQL reads them, not as text', () => {
    expect(sameSettingValue('autovacuum_vacuum_scale_factor', '0.020', '0.02')).toBe(true);
    expect(sameSettingValue('autovacuum_enabled', 'on', 'true')).toBe(true);
    expect(sameSettingValue('autovacuum_enabled', 'of', 'false')).toBe(true);
    expect(sameSettingValue('toast.autovacuum_enabled', 'yes', 'false')).toBe(false);
    // parse_int rounds an integer option written as 1.5 to 2 (rint: halves to even).
    expect(sameSettingValue('autovacuum_vacuum_threshold', '1.5', '2')).toBe(true);
    expect(sameSettingValue('autovacuum_vacuum_threshold', '2.5', '2')).toBe(true);
    expect(sameSettingValue('vacuum_index_cleanup', 'true', 'on')).toBe(true);
    expect(sameSettingValue('vacuum_index_cleanup', 'AUTO', 'auto')).toBe(true);

    const diff = diffStorageParameters(
      desired([policy('jobs', vacuum({ autovacuum_vacuum_scale_factor: '0.02', autovacuum_enabled: 'true' }))]),
      catalog([table('jobs', { reloptions: ['autovacuum_vacuum_scale_factor=0.020', 'autovacuum_enabled=on'] })]),
      recorded('jobs', 'autovacuum_vacuum_scale_factor', 'autovacuum_enabled'),
    );
    expect(diff.changes).toEqual([]);
  });

  it('resets a parameter pgwarden set once the policy no longer declares it', () => {
    const diff = diffStorageParameters(
      desired([policy('jobs', vacuum({ autovacuum_vacuum_scale_factor: '0.02' }))]),
      catalog([table('jobs', { reloptions: ['autovacuum_vacuum_scale_factor=0.02'], toastReloptions: ['autovacuum_enabled=false'] })]),
      recorded('jobs', 'autovacuum_vacuum_scale_factor', 'toast.autovacuum_enabled'),
    );

    expect(diff.changes[0]?.settings).toEqual([{ parameter: 'toast.autovacuum_enabled', before: 'false', after: null }]);
    expect(diff.changes[0]?.relations[0]?.reset).toEqual(['toast.autovacuum_enabled']);
    expect(diff.changes[0]?.managed).toEqual(['autovacuum_vacuum_scale_factor']);
  });

  it('resets everything it set when the vacuum policy goes away entirely', () => {
    const diff = diffStorageParameters(desired([policy('jobs', undefined)]), catalog([table('jobs', { reloptions: ['autovacuum_enabled=false', 'fillfactor=90'] })]), recorded('jobs', 'autovacuum_enabled'));

    expect(diff.changes[0]?.relations[0]).toMatchObject({ set: [], reset: ['autovacuum_enabled'] });
    expect(diff.changes[0]?.managed).toEqual([]);
  });

  it('leaves a parameter someone set by hand alone and says so, unless the table is fully managed', () => {
    const live = catalog([table('jobs', { reloptions: ['autovacuum_analyze_threshold=500', 'fillfactor=80'] })]);
    const partial = diffStorageParameters(desired([policy('jobs', vacuum({ autovacuum_enabled: 'true' }))]), live, none);
    const full = diffStorageParameters(desired([policy('jobs', vacuum({ autovacuum_enabled: 'true' }), 'full')]), live, none);

    expect(partial.changes[0]?.relations[0]?.reset).toEqual([]);
    expect(partial.warnings.map((w) => w.message)).toEqual([
      'public.jobs has autovacuum_analyze_threshold=500, which its vacuum policy does not declare; pgwarden leaves it alone (declare it, or set managed: full to have it reset)',
    ]);
    // fillfactor is not an autovacuum parameter: never touched.
    expect(full.changes[0]?.relations[0]?.reset).toEqual(['autovacuum_analyze_threshold']);
    expect(full.warnings).toEqual([]);
  });

  it('puts the settings of a partitioned table on every leaf partition and none on the parent', () => {
    const parent = table('events', { kind: 'partitioned', toastReloptions: null });
    const mid = table('events_2026', { kind: 'partitioned', parentOid: parent.oid, toastReloptions: null });
    const leaves = [
      table('events_2026_01', { parentOid: mid.oid }),
      table('events_2026_02', { parentOid: mid.oid, reloptions: ['autovacuum_vacuum_scale_factor=0.01'] }),
      table('events_default', { parentOid: parent.oid }),
    ];
    const diff = diffStorageParameters(desired([policy('events', vacuum({ autovacuum_vacuum_scale_factor: '0.01' }))]), catalog([parent, mid, ...leaves]), none);

    expect(diff.changes[0]?.relations.map((r) => r.name)).toEqual(['events_2026_01', 'events_default']);
    expect(diff.changes[0]?.table).toMatchObject({ name: 'events', partitioned: true });
  });

  it('does not chase toast settings on a table without a TOAST table, and says why', () => {
    const diff = diffStorageParameters(
      desired([policy('counters', vacuum({ 'toast.autovacuum_enabled': 'false', autovacuum_enabled: 'false' }))]),
      catalog([table('counters', { toastReloptions: null })]),
      none,
    );

    expect(diff.changes[0]?.relations[0]?.set).toEqual([{ parameter: 'autovacuum_enabled', value: 'false' }]);
    expect(diff.warnings.map((w) => w.message)).toEqual([
      'toast.* settings of public.counters have nothing to apply to: it has no TOAST table (no column that can be stored out of line)',
    ]);
  });

  it('records settings the table already has so that removing one later resets it', () => {
    const diff = diffStorageParameters(desired([policy('jobs', vacuum({ autovacuum_enabled: 'false' }))]), catalog([table('jobs', { reloptions: ['autovacuum_enabled=false'] })]), none);

    expect(diff.changes[0]?.relations).toEqual([]);
    expect(diff.changes[0]?.managed).toEqual(['autovacuum_enabled']);
    expect(diff.changes[0]?.reason).toMatch(/records them as managed/);
  });

  it('applies the defaults to every table no policy names, quietly', () => {
    const diff = diffStorageParameters(
      desired([], vacuum({ autovacuum_vacuum_scale_factor: '0.05' })),
      catalog([table('a'), table('b', { reloptions: ['autovacuum_vacuum_scale_factor=0.05', 'autovacuum_enabled=false'] })]),
      none,
    );

    expect(diff.changes.map((c) => [c.table.name, c.relations.length])).toEqual([
      ['a', 1],
      ['b', 0],
    ]);
    expect(diff.warnings).toEqual([]);
  });

  it('warns that a partition\'s own vacuum block is ignored', () => {
    const parent = table('events', { kind: 'partitioned', toastReloptions: null });
    const part = table('events_p1', { parentOid: parent.oid });
    const diff = diffStorageParameters(desired([policy('events_p1', vacuum({ autovacuum_enabled: 'false' }))]), catalog([parent, part]), none);

    expect(diff.changes).toEqual([]);
    expect(diff.warnings[0]?.message).toBe('public.events_p1 is a partition: it takes the vacuum settings of its partitioned table, so these are ignored');
  });

  it('becomes one ALTER TABLE per relation, recorded as pgwarden\'s before it runs', () => {
    const diff = diffStorageParameters(
      desired([policy('jobs', vacuum({ autovacuum_vacuum_scale_factor: '0.02', 'toast.autovacuum_enabled': 'false' }))]),
      catalog([table('jobs', { reloptions: ['autovacuum_analyze_threshold=9'] })]),
      recorded('jobs', 'autovacuum_analyze_threshold'),
    );
    const change = diff.changes[0];
    if (change === undefined) throw new Error('expected a change');

    expect(storageSteps(change)).toEqual([
      { kind: 'setting-registry', action: 'add', schema: 'public', table: 'jobs', parameters: ['autovacuum_vacuum_scale_factor', 'toast.autovacuum_enabled'] },
      {
        kind: 'sql',
        sql: `ALTER TABLE IF EXISTS "public"."jobs" SET ("autovacuum_vacuum_scale_factor" = '0.02', "toast"."autovacuum_enabled" = 'false'), RESET ("autovacuum_analyze_threshold")`,
        transactional: true,
        lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: 'public.jobs', online: true },
        build: false,
      },
      { kind: 'setting-registry', action: 'replace', schema: 'public', table: 'jobs', parameters: ['autovacuum_vacuum_scale_factor', 'toast.autovacuum_enabled'] },
    ]);
  });
});

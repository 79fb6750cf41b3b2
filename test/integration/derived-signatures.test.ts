import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnScratch, canonicaliseIndexes, type Canonical } from '../../engine/catalog/canonicalise.ts';
import { signatureKey, type IndexSignature } from '../../engine/catalog/catalog.ts';
import { catalogSession } from '../../engine/catalog/introspect.ts';
import { deriveSignatures } from '../../engine/catalog/signature-facts.ts';
import type { DesiredIndex, DesiredIndexKey, IndexMethod } from '../../engine/policy/desired.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * A plain-column index's signature is derived from catalog facts instead of a scratch build. The scratch
 * build is PostgreSQL's own answer, so it is the reference: every derived signature must equal it, and
 * every case the derivation cannot do exactly must be declined (left to the scratch build).
 */

let db: TestDatabase;
let extras: { citext: boolean; icu: boolean };

async function sql(text: string): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text)).rows;
}

type KeySpec = string | { column: string; order?: 'asc' | 'desc'; nulls?: 'first' | 'last'; opclass?: string; collation?: string } | { expression: string };

function key(spec: KeySpec): DesiredIndexKey {
  const s = typeof spec === 'string' ? { column: spec } : spec;
  if ('expression' in s) return { kind: 'expression', expression: s.expression, order: 'asc', nulls: 'last' };
  const order = s.order ?? 'asc';
  const nulls = s.nulls ?? (order === 'desc' ? 'first' : 'last');
  return { kind: 'column', column: s.column, order, nulls, ...(s.opclass ? { opclass: s.opclass } : {}), ...(s.collation ? { collation: s.collation } : {}) };
}

interface Case {
  readonly name: string;
  readonly method?: IndexMethod;
  readonly keys: readonly KeySpec[];
  readonly include?: readonly string[];
  readonly unique?: boolean;
  readonly nullsNotDistinct?: boolean;
  readonly where?: string;
  readonly table?: string;
  /** 'derived': the facts give PostgreSQL's exact answer; 'declined': a scratch build must answer. */
  readonly expect: 'derived' | 'declined';
  readonly needs?: 'citext' | 'icu';
}

function desired(c: Case): DesiredIndex {
  return {
    schema: 'kinds',
    table: c.table ?? 'every_type',
    name: c.name,
    method: c.method ?? 'btree',
    unique: c.unique ?? false,
    nullsNotDistinct: c.nullsNotDistinct ?? false,
    keys: c.keys.map(key),
    include: c.include ?? [],
    ...(c.where ? { where: c.where } : {}),
    source: { file: 'kinds.yaml', line: 1, col: 1 },
  };
}

const derivedBtree = ['i2', 'i4', 'i8', 'num', 'txt', 'ch', 'id', 'ts', 'd', 'flag', 'bin', 'doc', 'addr', 'code', 'f8', 'iv', 'tm', 'mac', 'b3', 'vb', 'nm', 'chr', 'cash', 'o', 'tsv'].map(
  (column): Case => ({ name: `btree_${column}`, keys: [column], expect: 'derived' }),
);

const CASES: readonly Case[] = [
  ...derivedBtree,
  { name: 'btree_citext', keys: ['ci'], expect: 'derived', needs: 'citext' },
  { name: 'btree_desc', keys: [{ column: 'ts', order: 'desc' }], expect: 'derived' },
  { name: 'btree_desc_nulls_last', keys: [{ column: 'ts', order: 'desc', nulls: 'last' }], expect: 'derived' },
  { name: 'btree_nulls_first', keys: [{ column: 'i4', nulls: 'first' }], expect: 'derived' },
  { name: 'btree_composite', keys: ['i8', { column: 'txt', order: 'desc', nulls: 'last' }, { column: 'd', nulls: 'first' }], expect: 'derived' },
  { name: 'btree_unique', keys: ['id'], unique: true, expect: 'derived' },
  { name: 'btree_unique_nulls_not_distinct', keys: ['i4', 'code'], unique: true, nullsNotDistinct: true, expect: 'declined' },
  { name: 'btree_include', keys: ['i4'], include: ['txt', 'doc', 'span'], expect: 'derived' },
  { name: 'btree_unique_include', keys: [{ column: 'ts', order: 'desc' }], include: ['vc'], unique: true, expect: 'derived' },
  { name: 'btree_same_column_twice', keys: ['i4', { column: 'i4', order: 'desc' }], expect: 'derived' },
  { name: 'hash_int', method: 'hash', keys: ['i4'], expect: 'derived' },
  { name: 'hash_text', method: 'hash', keys: ['txt'], expect: 'derived' },
  { name: 'hash_uuid', method: 'hash', keys: ['id'], expect: 'derived' },
  { name: 'hash_collate_c', method: 'hash', keys: ['code'], expect: 'derived' },
  // order and nulls mean nothing to a non-ordering method: no option bits
  { name: 'hash_desc_ignored', method: 'hash', keys: [{ column: 'i8', order: 'desc' }], expect: 'derived' },
  { name: 'hash_citext', method: 'hash', keys: ['ci'], expect: 'derived', needs: 'citext' },
  { name: 'brin_timestamptz', method: 'brin', keys: ['ts'], expect: 'derived' },
  { name: 'brin_multi', method: 'brin', keys: ['i8', 'd', 'num', 'addr'], expect: 'derived' },
  { name: 'brin_text', method: 'brin', keys: ['txt'], expect: 'derived' },
  { name: 'gin_jsonb', method: 'gin', keys: ['doc'], expect: 'derived' },
  { name: 'gin_tsvector', method: 'gin', keys: ['tsv'], expect: 'derived' },
  { name: 'gist_tsvector', method: 'gist', keys: ['tsv'], expect: 'derived' },
  { name: 'brin_float_interval', method: 'brin', keys: ['f8', 'iv', 'mac'], expect: 'derived' },
  { name: 'hash_name', method: 'hash', keys: ['nm'], expect: 'derived' },
  { name: 'gist_point_include', method: 'gist', keys: ['pt'], include: ['i4'], expect: 'derived' },
  { name: 'spgist_text', method: 'spgist', keys: ['txt'], expect: 'derived' },
  { name: 'spgist_collate_c', method: 'spgist', keys: ['code'], expect: 'derived' },
  { name: 'spgist_inet_include', method: 'spgist', keys: ['addr'], include: ['txt'], expect: 'derived' },
  { name: 'on_partitioned_table', table: 'parted', keys: ['at', { column: 'v', order: 'desc' }], expect: 'derived' },

  // default operator class found by coercion or polymorphism, not by exact type: the server decides
  { name: 'btree_varchar', keys: ['vc'], expect: 'declined' },
  { name: 'btree_enum', keys: ['mood'], expect: 'declined' },
  { name: 'btree_domain', keys: ['qty'], expect: 'declined' },
  { name: 'btree_array', keys: ['tags'], expect: 'declined' },
  { name: 'btree_range', keys: ['span'], expect: 'declined' },
  { name: 'btree_cidr', keys: ['net'], expect: 'declined' },
  { name: 'brin_cidr', method: 'brin', keys: ['net'], expect: 'declined' },
  { name: 'btree_domain_over_text', keys: ['label'], expect: 'declined' },
  { name: 'btree_composite_with_varchar', keys: ['i4', 'vc'], expect: 'declined' },
  { name: 'hash_varchar', method: 'hash', keys: ['vc'], expect: 'declined' },
  { name: 'gin_array', method: 'gin', keys: ['tags'], expect: 'declined' },
  { name: 'gist_range', method: 'gist', keys: ['span'], expect: 'declined' },
  // no default operator class at all (the scratch build says so)
  { name: 'gist_int', method: 'gist', keys: ['i4'], expect: 'declined' },
  { name: 'gist_inet', method: 'gist', keys: ['addr'], expect: 'declined' },
  { name: 'btree_point', keys: ['pt'], expect: 'declined' },
  // nondeterministic collation: left to the server
  { name: 'btree_nondeterministic', keys: ['nd'], expect: 'declined', needs: 'icu' },
  // anything the policy spells as SQL or names explicitly
  { name: 'expression', keys: [{ expression: 'lower(txt)' }], expect: 'declined' },
  { name: 'partial', keys: ['i4'], where: 'flag', expect: 'declined' },
  { name: 'explicit_opclass', keys: [{ column: 'txt', opclass: 'text_pattern_ops' }], expect: 'declined' },
  { name: 'explicit_default_opclass', keys: [{ column: 'i4', opclass: 'int4_ops' }], expect: 'declined' },
  { name: 'explicit_collation', keys: [{ column: 'txt', collation: 'C' }], expect: 'declined' },
  // what DefineIndex refuses: the scratch build reports it
  { name: 'missing_column', keys: ['i4', 'nope'], expect: 'declined' },
  { name: 'missing_include', keys: ['i4'], include: ['nope'], expect: 'declined' },
  { name: 'system_column', keys: ['ctid'], expect: 'declined' },
  { name: 'missing_table', table: 'nowhere', keys: ['i4'], expect: 'declined' },
  { name: 'hash_unique', method: 'hash', keys: ['i4'], unique: true, expect: 'declined' },
  { name: 'hash_two_columns', method: 'hash', keys: ['i4', 'i8'], expect: 'declined' },
  { name: 'spgist_two_columns', method: 'spgist', keys: ['txt', 'addr'], expect: 'declined' },
  { name: 'gin_include', method: 'gin', keys: ['doc'], include: ['i4'], expect: 'declined' },
  { name: 'brin_include', method: 'brin', keys: ['i4'], include: ['i8'], expect: 'declined' },
];

let applicable: Case[];
let derived: Map<string, IndexSignature | undefined>;
let scratch: Map<string, Canonical>;

beforeAll(async () => {
  db = await useTestDatabase();
  const citext = await sql(`SELECT 1 FROM pg_available_extensions WHERE name = 'citext'`);
  if (citext.length > 0) await sql(`CREATE EXTENSION citext`);
  const icu = await sql(`SELECT 1 FROM pg_collation WHERE collprovider = 'i' LIMIT 1`);
  extras = { citext: citext.length > 0, icu: icu.length > 0 };
  await sql(`CREATE SCHEMA kinds`);
  await sql(`CREATE TYPE kinds.mood AS ENUM ('sad', 'ok', 'happy')`);
  await sql(`CREATE DOMAIN kinds.positive AS int CHECK (VALUE > 0)`);
  await sql(`CREATE DOMAIN kinds.label AS text COLLATE "C"`);
  if (extras.icu) await sql(`CREATE COLLATION kinds.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false)`);
  await sql(`CREATE TABLE kinds.every_type (
      i2 int2, i4 int4, i8 int8, num numeric(12, 2), txt text, vc varchar(20), ch char(5),
      ${extras.citext ? 'ci citext,' : ''} id uuid, ts timestamptz, d date, flag bool, bin bytea, doc jsonb, addr inet,
      span int4range, mood kinds.mood, qty kinds.positive, tags text[], code text COLLATE "C", pt point,
      f8 float8, iv interval, tm time, mac macaddr, b3 bit(3), vb varbit, nm name, chr "char", cash money, o oid, tsv tsvector,
      net cidr, label kinds.label
      ${extras.icu ? ', nd text COLLATE kinds.nocase' : ''}, dropped int)`);
  // a dropped column leaves a hole in attnum that column lookups must not trip over
  await sql(`ALTER TABLE kinds.every_type DROP COLUMN dropped`);
  await sql(`CREATE TABLE kinds.parted (at timestamptz NOT NULL, v text) PARTITION BY RANGE (at)`);
  await sql(`CREATE TABLE kinds.parted_2026 PARTITION OF kinds.parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);

  applicable = CASES.filter((c) => c.needs === undefined || extras[c.needs]);
  const indexes = applicable.map(desired);
  const client = await db.pool.connect();
  try {
    const session = catalogSession(client);
    const signatures = await deriveSignatures(session, indexes);
    const built = await buildOnScratch(session, indexes);
    derived = new Map(applicable.map((c, i) => [c.name, signatures[i]]));
    scratch = new Map(applicable.map((c, i) => [c.name, built[i]!]));
  } finally {
    client.release();
  }
});

afterAll(async () => {
  await db.close();
});

describe('signatures derived from catalog facts, checked against PostgreSQL building the index', () => {
  it.each(CASES.filter((c) => c.expect === 'derived').map((c) => [c.name, c] as const))('derives %s exactly as PostgreSQL builds it', (_, c) => {
    if (!applicable.includes(c)) return; // needs citext or ICU, which this server lacks
    const built = scratch.get(c.name);
    expect(built?.ok ? null : built?.error).toBeNull();
    const signature = derived.get(c.name);
    expect(signature).toBeDefined();
    expect(signatureKey(signature!)).toBe(signatureKey((built as Extract<Canonical, { ok: true }>).signature));
  });

  it.each(CASES.filter((c) => c.expect === 'declined').map((c) => [c.name, c] as const))('declines %s, leaving it to a scratch build', (_, c) => {
    if (!applicable.includes(c)) return;
    expect(derived.get(c.name)).toBeUndefined();
  });

  it('leaves types matched by coercion or polymorphism to a scratch build, which gives their signature', () => {
    for (const name of ['btree_varchar', 'btree_enum', 'btree_domain', 'btree_array', 'btree_range', 'btree_cidr', 'btree_domain_over_text', 'gin_array', 'gist_range']) {
      expect(scratch.get(name)?.ok, name).toBe(true);
    }
  });

  it('reports a missing column in the server words with the derivation in place', async () => {
    const client = await db.pool.connect();
    try {
      const [missing] = await canonicaliseIndexes(catalogSession(client), [desired({ name: 'missing', keys: ['i4', 'nope'], expect: 'declined' })]);
      expect(missing).toEqual({ ok: false, error: 'column "nope" does not exist' });
    } finally {
      client.release();
    }
  });

  it('canonicalises plain-column indexes in one round trip, with no scratch build', async () => {
    const plain = CASES.filter((c) => c.expect === 'derived' && c.needs === undefined).map(desired);
    const client = await db.pool.connect();
    try {
      const session = catalogSession(client);
      const results = await canonicaliseIndexes(session, plain);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(session.roundTrips).toBe(1);
    } finally {
      client.release();
    }
  });

  it('gives every index, derived or built, its own result in the order asked', async () => {
    const mixed = ['btree_i4', 'expression', 'hash_text', 'missing_column', 'btree_varchar', 'btree_desc'].map((name) => desired(CASES.find((c) => c.name === name)!));
    const client = await db.pool.connect();
    try {
      const results = await canonicaliseIndexes(catalogSession(client), mixed);
      const expected = ['btree_i4', 'expression', 'hash_text', 'missing_column', 'btree_varchar', 'btree_desc'].map((name) => scratch.get(name));
      expect(results.map(canonicalKey)).toEqual(expected.map((r) => canonicalKey(r!)));
    } finally {
      client.release();
    }
  });
});

function canonicalKey(c: Canonical): string {
  return c.ok ? signatureKey(c.signature) : `error: ${c.error}`;
}

import type pg from 'pg';
import type { DesiredIndex } from '../policy/desired.ts';
import { carriesPolicySql, createIndexSql } from '../sql/ddl.ts';
import { qualified } from '../sql/ident.ts';
import { createHash } from 'node:crypto';
import { signatureKey, type ActualIndex, type Catalog, type IndexSignature } from './catalog.ts';
import { parseSignature, query, type CatalogSession, type SignatureRow } from './introspect.ts';
import { INDEX_COLUMNS_PER_INDEX, indexSignatureColumns } from './queries.ts';

/**
 * Lets PostgreSQL say what a desired index *is*: each one is built on an empty `LIKE` copy of its table
 * inside a transaction that is rolled back, and its signature read from pg_index exactly as for live
 * indexes. Default operator classes, collations, expression and predicate spelling are all resolved by
 * the server, so no SQL normaliser is needed, and a missing column fails here, at plan time.
 */
export type Canonical = { readonly ok: true; readonly signature: IndexSignature } | { readonly ok: false; readonly error: string };

const SCRATCH = 'pgwarden_scratch';

const SCRATCH_SIGNATURES_SQL = `
SELECT ic.relname AS scratch_name, ${indexSignatureColumns(INDEX_COLUMNS_PER_INDEX)}
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
 WHERE x.indrelid = 'pg_temp.${SCRATCH}'::pg_catalog.regclass`;

/*
 * One round trip for every index whose statement pgwarden generated whole (quoted names and keywords
 * only). Each table gets its own subtransaction (the exception block), rolled back once its signatures
 * are read, so locks on thousands of scratch relations never pile up in one transaction.
 */
const BATCH_FUNCTION_SQL = `
CREATE FUNCTION pg_temp.pgwarden_canonicalise(groups jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  g jsonb; s jsonb; sigs jsonb;
  -- One small object per table, merged once at the end: concatenating onto one growing jsonb copies it
  -- every time, which made 5,000 tables quadratic (minutes instead of seconds).
  parts jsonb[] := '{}';
BEGIN
  FOR g IN SELECT * FROM jsonb_array_elements(groups) LOOP
    BEGIN
      EXECUTE format('CREATE TEMP TABLE ${SCRATCH} (LIKE %s)', g->>'table');
      FOR s IN SELECT * FROM jsonb_array_elements(g->'indexes') LOOP
        BEGIN
          EXECUTE s->>'sql';
        EXCEPTION WHEN OTHERS THEN
          parts := parts || jsonb_build_object(s->>'id', jsonb_build_object('error', SQLERRM));
        END;
      END LOOP;
      PERFORM pg_catalog.set_config('search_path', '', true);
      EXECUTE format('SELECT coalesce(jsonb_object_agg(scratch_name, to_jsonb(r)), ''{}'') FROM (%s) r', $q$${SCRATCH_SIGNATURES_SQL}$q$) INTO sigs;
      parts := parts || sigs;
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pgwarden: roll back scratch table';
    EXCEPTION
      WHEN raise_exception THEN NULL;
      WHEN OTHERS THEN
        -- the LIKE copy itself failed (privileges, a table dropped since introspection)
        FOR s IN SELECT * FROM jsonb_array_elements(g->'indexes') LOOP
          parts := parts || jsonb_build_object(s->>'id', jsonb_build_object('error', SQLERRM));
        END LOOP;
    END;
  END LOOP;
  RETURN (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM unnest(parts) AS p(part), jsonb_each(p.part) AS e);
END
$fn$`;

function scratchName(i: number): string {
  return `pgwarden_i${i}`;
}

export async function canonicaliseIndexes(session: CatalogSession, desired: readonly DesiredIndex[]): Promise<Canonical[]> {
  const results: Canonical[] = new Array<Canonical>(desired.length);
  const safe = new Map<string, { id: string; sql: string }[]>();
  const withPolicySql: number[] = [];
  desired.forEach((index, i) => {
    if (carriesPolicySql(index)) {
      withPolicySql.push(i);
      return;
    }
    const table = qualified(index.schema, index.table);
    const sql = createIndexSql(index, { schema: '', table: SCRATCH, name: scratchName(i) });
    safe.set(table, [...(safe.get(table) ?? []), { id: scratchName(i), sql }]);
  });

  await query(session, 'BEGIN');
  try {
    if (safe.size > 0) {
      await query(session, BATCH_FUNCTION_SQL);
      const groups = [...safe].map(([table, indexes]) => ({ table, indexes }));
      const [row] = await query<{ r: Record<string, SignatureRow | { error: string }> }>(
        session,
        'SELECT pg_temp.pgwarden_canonicalise($1::jsonb) AS r',
        [JSON.stringify(groups)],
      );
      desired.forEach((_, i) => {
        if (carriesPolicySql(desired[i]!)) return;
        results[i] = toCanonical(row?.r[scratchName(i)]);
      });
    }
    const byTable = new Map<string, number[]>();
    for (const i of withPolicySql) {
      const key = qualified(desired[i]!.schema, desired[i]!.table);
      byTable.set(key, [...(byTable.get(key) ?? []), i]);
    }
    for (const [table, members] of byTable) {
      for (const [i, canonical] of await canonicaliseWithPolicySql(session, table, members, desired)) results[i] = canonical;
    }
  } finally {
    await query(session, 'ROLLBACK');
  }
  return results;
}

function toCanonical(entry: SignatureRow | { error: string } | undefined): Canonical {
  if (entry === undefined) return { ok: false, error: 'PostgreSQL did not build the index' };
  if ('error' in entry) return { ok: false, error: entry.error };
  return { ok: true, signature: parseSignature(entry) };
}

/**
 * Indexes carrying policy SQL (expression, predicate), one table at a time: each CREATE INDEX is sent
 * alone over the extended protocol, so the text can never smuggle in a second statement. Round trips:
 * two per table plus one per index. A failing index aborts the table's subtransaction; the table's scratch
 * copy is then rebuilt with the indexes that did succeed (rare: it is a policy mistake being reported).
 */
async function canonicaliseWithPolicySql(
  session: CatalogSession,
  table: string,
  members: readonly number[],
  desired: readonly DesiredIndex[],
): Promise<Map<number, Canonical>> {
  const out = new Map<number, Canonical>();
  const setup = `SAVEPOINT pgwarden_table; CREATE TEMP TABLE ${SCRATCH} (LIKE ${table})`;
  const create = async (i: number): Promise<void> => {
    session.roundTrips += 1;
    // queryMode 'extended' (node-postgres >= 8.11, missing from its types) forces Parse/Bind/Execute even without parameters.
    const extended: pg.QueryConfig & { queryMode: 'extended' } = {
      text: createIndexSql(desired[i]!, { schema: '', table: SCRATCH, name: scratchName(i) }),
      queryMode: 'extended',
    };
    await session.client.query(extended);
  };
  try {
    await query(session, setup);
  } catch (error) {
    await query(session, 'ROLLBACK TO SAVEPOINT pgwarden_table');
    for (const i of members) out.set(i, { ok: false, error: (error as Error).message });
    return out;
  }
  const built: number[] = [];
  for (const i of members) {
    try {
      await create(i);
      built.push(i);
    } catch (error) {
      out.set(i, { ok: false, error: (error as Error).message });
      await query(session, `ROLLBACK TO SAVEPOINT pgwarden_table; ${setup.replace('SAVEPOINT pgwarden_table; ', '')}`);
      for (const j of built) await create(j);
    }
  }
  // search_path is emptied only now, after the user's expressions were resolved with theirs, so the
  // deparsed text is fully qualified exactly like the live catalog's (read the same way).
  session.roundTrips += 1;
  const results = (await session.client.query(`SET LOCAL search_path = ''; ${SCRATCH_SIGNATURES_SQL}`)) as unknown as pg.QueryResult<SignatureRow & { scratch_name: string }>[];
  const rows = new Map((results[1]?.rows ?? []).map((r) => [r.scratch_name, r]));
  for (const i of built) out.set(i, toCanonical(rows.get(scratchName(i))));
  await query(session, 'ROLLBACK TO SAVEPOINT pgwarden_table');
  return out;
}

/** What a policy entry says, independent of where it is written: changes when the declaration does. */
export function specHash(index: DesiredIndex): string {
  const spec = [index.schema, index.table, index.method, index.unique, index.nullsNotDistinct, index.keys, index.include, index.where ?? null];
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 32);
}

/**
 * The signature recorded when pgwarden last built or adopted this index, if the policy entry is unchanged
 * since and the live index still has that signature: then PostgreSQL's answer is already known, and the
 * steady-state plan needs no scratch builds at all.
 */
export function knownSignatures(catalog: Catalog, desired: readonly DesiredIndex[]): (IndexSignature | undefined)[] {
  const records = new Map(catalog.managed.map((m) => [`${m.schema}\u0000${m.name}`, m]));
  const tables = new Map(catalog.tables.map((t) => [t.oid, t]));
  const live = new Map<string, ActualIndex>();
  for (const i of catalog.indexes) {
    const t = tables.get(i.tableOid);
    if (t) live.set(`${t.schema}\u0000${t.name}\u0000${i.name}`, i);
  }
  return desired.map((index) => {
    const record = records.get(`${index.schema}\u0000${index.name}`);
    const actual = live.get(`${index.schema}\u0000${index.table}\u0000${index.name}`);
    if (!record || !actual || record.table !== index.table || record.specHash !== specHash(index)) return undefined;
    return record.signature === signatureKey(actual.signature) ? actual.signature : undefined;
  });
}

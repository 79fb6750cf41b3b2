import type pg from 'pg';
import type { DesiredIndex } from '../policy/desired.ts';
import { carriesPolicySql, createIndexSql } from '../sql/ddl.ts';
import { qualified } from '../sql/ident.ts';
import { createHash } from 'node:crypto';
import { signatureKey, type ActualIndex, type Catalog, type IndexSignature } from './catalog.ts';
import { parseSignature, query, type CatalogSession, type SignatureRow } from './introspect.ts';
import { INDEX_SIGNATURE_COLUMNS } from './queries.ts';

/**
 * Lets PostgreSQL say what a desired index *is*: each one is built on an empty `LIKE` copy of its table
 * inside a transaction that is rolled back, and its signature read from pg_index exactly as for live
 * indexes. Default operator classes, collations, expression and predicate spelling are all resolved by
 * the server, so no SQL normaliser is needed, and a missing column fails here, at plan time.
 */
export type Canonical = { readonly ok: true; readonly signature: IndexSignature } | { readonly ok: false; readonly error: string };

const SCRATCH = 'pgwarden_scratch';

const SCRATCH_SIGNATURES_SQL = `
SELECT ic.relname AS scratch_name, ${INDEX_SIGNATURE_COLUMNS}
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
  g jsonb; s jsonb; results jsonb := '{}'; sigs jsonb;
BEGIN
  FOR g IN SELECT * FROM jsonb_array_elements(groups) LOOP
    BEGIN
      EXECUTE format('CREATE TEMP TABLE ${SCRATCH} (LIKE %s)', g->>'table');
      FOR s IN SELECT * FROM jsonb_array_elements(g->'indexes') LOOP
        BEGIN
          EXECUTE s->>'sql';
        EXCEPTION WHEN OTHERS THEN
          results := results || jsonb_build_object(s->>'id', jsonb_build_object('error', SQLERRM));
        END;
      END LOOP;
      PERFORM pg_catalog.set_config('search_path', '', true);
      EXECUTE format('SELECT coalesce(jsonb_object_agg(scratch_name, to_jsonb(r)), ''{}'') FROM (%s) r', $q$${SCRATCH_SIGNATURES_SQL}$q$) INTO sigs;
      results := results || sigs;
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pgwarden: roll back scratch table';
    EXCEPTION
      WHEN raise_exception THEN NULL;
      WHEN OTHERS THEN
        -- the LIKE copy itself failed (privileges, a table dropped since introspection)
        FOR s IN SELECT * FROM jsonb_array_elements(g->'indexes') LOOP
          results := results || jsonb_build_object(s->>'id', jsonb_build_object('error', SQLERRM));
        END LOOP;
    END;
  END LOOP;
  RETURN results;
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
    for (const i of withPolicySql) results[i] = await canonicaliseOne(session, desired[i]!, i);
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
 * An index carrying policy SQL (expression, predicate) is built alone over the extended protocol, so
 * the text can never smuggle in a second statement; the savepoint drops the scratch table's locks.
 */
async function canonicaliseOne(session: CatalogSession, index: DesiredIndex, i: number): Promise<Canonical> {
  await query(session, `SAVEPOINT pgwarden_one; CREATE TEMP TABLE ${SCRATCH} (LIKE ${qualified(index.schema, index.table)})`);
  try {
    session.roundTrips += 1;
    // queryMode 'extended' (node-postgres >= 8.11, missing from its types) forces Parse/Bind/Execute even without parameters.
    const extended: pg.QueryConfig & { queryMode: 'extended' } = {
      text: createIndexSql(index, { schema: '', table: SCRATCH, name: scratchName(i) }),
      queryMode: 'extended',
    };
    await session.client.query(extended);
    await query(session, `SET LOCAL search_path = ''`);
    const rows = await query<SignatureRow & { scratch_name: string }>(session, SCRATCH_SIGNATURES_SQL);
    return toCanonical(rows[0]);
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  } finally {
    await query(session, 'ROLLBACK TO SAVEPOINT pgwarden_one');
  }
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

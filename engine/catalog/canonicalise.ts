import { parse } from 'libpg-query';
import type { DesiredIndex } from '../policy/desired.ts';
import { carriesPolicySql, createIndexSql } from '../sql/ddl.ts';
import { qualified } from '../sql/ident.ts';
import { createHash } from 'node:crypto';
import { signatureKey, type ActualIndex, type Catalog, type IndexSignature } from './catalog.ts';
import { parseSignature, query, serverVersionOf, type CatalogSession, type SignatureRow } from './introspect.ts';
import { INDEX_COLUMNS_PER_INDEX, indexSignatureColumns } from './queries.ts';
import { deriveSignatures, derivable } from './signature-facts.ts';

/**
 * Lets PostgreSQL say what a desired index *is*: each one is built on an empty `LIKE` copy of its table
 * inside a transaction that is rolled back, and its signature read from pg_index exactly as for live
 * indexes. Default operator classes, collations, expression and predicate spelling are all resolved by
 * the server, so no SQL normaliser is needed, and a missing column fails here, at plan time.
 * A build costs about 0.8 ms of server time, 12 s for 15,000 indexes: so an index of plain columns with
 * nothing for the server to resolve gets its signature from catalog facts instead
 * (engine/catalog/signature-facts.ts), and only the rest is built.
 */
export type Canonical = { readonly ok: true; readonly signature: IndexSignature } | { readonly ok: false; readonly error: string };

const SCRATCH = 'pgwarden_scratch';

const scratchSignaturesSql = (serverVersion: number): string => `
SELECT ic.relname AS scratch_name, ${indexSignatureColumns(INDEX_COLUMNS_PER_INDEX, serverVersion)}
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
 WHERE x.indrelid = 'pg_temp.${SCRATCH}'::pg_catalog.regclass`;

/*
 * One round trip for every declared index, whatever the number of tables. Each table gets its own
 * subtransaction (the exception block), rolled back once its signatures are read, so locks on thousands
 * of scratch relations never pile up in one transaction; each index has its own, so one that fails
 * (a missing column, a mistyped expression) is reported and the table's others still build.
 */
const batchFunctionSql = (serverVersion: number): string => `
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
      EXECUTE format('SELECT coalesce(jsonb_object_agg(scratch_name, to_jsonb(r)), ''{}'') FROM (%s) r', $q$${scratchSignaturesSql(serverVersion)}$q$) INTO sigs;
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

/**
 * Canonical signatures of the desired indexes, in order: derived from catalog facts where that is exact
 * (plain columns with default operator classes and collations: one round trip for all of them, no
 * build), built on scratch tables otherwise.
 */
export async function canonicaliseIndexes(session: CatalogSession, desired: readonly DesiredIndex[], helper?: CatalogSession): Promise<Canonical[]> {
  if (helper === undefined) {
    const derived = desired.some(derivable) ? await deriveSignatures(session, desired) : desired.map(() => undefined);
    const rest = desired.filter((_, i) => derived[i] === undefined);
    const built = rest.length > 0 ? await buildOnScratch(session, rest) : [];
    let next = 0;
    return derived.map((signature): Canonical => (signature ? { ok: true, signature } : built[next++]!));
  }
  // With a second connection, the scratch builds of the indexes that cannot be derived are split by
  // table between the two, the catalog facts read there first; an index that looked derivable but was
  // not is built after (one batch more).
  const notDerivable = desired.filter((index) => !derivable(index));
  const [here, there] = halvesByTable(notDerivable);
  const [[derived, builtThere], builtHere] = await Promise.all([
    (async () => {
      const facts = desired.some(derivable) ? await deriveSignatures(helper, desired) : desired.map(() => undefined);
      return [facts, there.length > 0 ? await buildOnScratch(helper, there) : []] as const;
    })(),
    here.length > 0 ? buildOnScratch(session, here) : [],
  ]);
  const builtOf = new Map([...here.map((index, i) => [index, builtHere[i]!] as const), ...there.map((index, i) => [index, builtThere[i]!] as const)]);
  const missed = desired.filter((index, i) => derived[i] === undefined && !builtOf.has(index));
  const late = missed.length > 0 ? await buildOnScratch(session, missed) : [];
  missed.forEach((index, i) => builtOf.set(index, late[i]!));
  return desired.map((index, i): Canonical => {
    const signature = derived[i];
    return signature ? { ok: true, signature } : builtOf.get(index)!;
  });
}

/** Two lists of about the same length, the indexes of a table always in the same one (one scratch copy per table). */
function halvesByTable(indexes: readonly DesiredIndex[]): [DesiredIndex[], DesiredIndex[]] {
  const byTable = new Map<string, DesiredIndex[]>();
  for (const index of indexes) {
    const key = `${index.schema}\u0000${index.table}`;
    const group = byTable.get(key);
    if (group) group.push(index);
    else byTable.set(key, [index]);
  }
  const halves: [DesiredIndex[], DesiredIndex[]] = [[], []];
  for (const group of byTable.values()) (halves[0].length <= halves[1].length ? halves[0] : halves[1]).push(...group);
  return halves;
}

/** Every desired index built on a scratch copy of its table: what PostgreSQL itself makes of it. */
export async function buildOnScratch(session: CatalogSession, desired: readonly DesiredIndex[]): Promise<Canonical[]> {
  const results: Canonical[] = new Array<Canonical>(desired.length);
  const byTable = new Map<string, { i: number; id: string; sql: string }[]>();
  for (const [i, index] of desired.entries()) {
    const sql = createIndexSql(index, { schema: '', table: SCRATCH, name: scratchName(i) });
    const refusal = carriesPolicySql(index) ? await notOneCreateIndex(sql) : undefined;
    if (refusal !== undefined) {
      results[i] = { ok: false, error: refusal };
      continue;
    }
    const table = qualified(index.schema, index.table);
    byTable.set(table, [...(byTable.get(table) ?? []), { i, id: scratchName(i), sql }]);
  }
  if (byTable.size === 0) return results;

  // Again here, whoever the caller: the server must lex the batch's statements as libpg_query did.
  await query(session, 'BEGIN; SET LOCAL standard_conforming_strings = on');
  try {
    await query(session, batchFunctionSql(await serverVersionOf(session)));
    const groups = [...byTable].map(([table, indexes]) => ({ table, indexes: indexes.map(({ id, sql }) => ({ id, sql })) }));
    const [row] = await query<{ r: Record<string, SignatureRow | { error: string }> }>(
      session,
      'SELECT pg_temp.pgwarden_canonicalise($1::jsonb) AS r',
      [JSON.stringify(groups)],
    );
    for (const { i, id } of [...byTable.values()].flat()) results[i] = toCanonical(row?.r[id]);
  } finally {
    await query(session, 'ROLLBACK');
  }
  return results;
}

/**
 * A statement carrying policy SQL (an expression or a `where` predicate) joins the batch only when
 * PostgreSQL's own parser (libpg_query) reads it as exactly one CREATE INDEX: EXECUTE in PL/pgSQL would
 * run a second statement smuggled in after a `;`. Anything else is refused here, before the server
 * sees it, with the parser's message.
 */
async function notOneCreateIndex(sql: string): Promise<string | undefined> {
  let tree: { stmts?: { stmt?: Record<string, unknown> }[] };
  try {
    tree = (await parse(sql)) as typeof tree;
  } catch (error) {
    return `not valid SQL in an index definition: ${(error as Error).message}`;
  }
  const statements = tree.stmts ?? [];
  if (statements.length === 1 && statements[0]?.stmt?.IndexStmt !== undefined) return undefined;
  return `the expression or where clause ends the CREATE INDEX statement (${statements.length} statements where one belongs); refused, nothing was sent to the server`;
}

function toCanonical(entry: SignatureRow | { error: string } | undefined): Canonical {
  if (entry === undefined) return { ok: false, error: 'PostgreSQL did not build the index' };
  if ('error' in entry) return { ok: false, error: entry.error };
  return { ok: true, signature: parseSignature(entry) };
}

// Asked once when the registry is read and again for each index a plan records: hashed once.
const specHashes = new WeakMap<DesiredIndex, string>();

/** What a policy entry says, independent of where it is written: changes when the declaration does. */
export function specHash(index: DesiredIndex): string {
  let hash = specHashes.get(index);
  if (hash === undefined) {
    const spec = [index.schema, index.table, index.method, index.unique, index.nullsNotDistinct, index.keys, index.include, index.where ?? null];
    hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 32);
    specHashes.set(index, hash);
  }
  return hash;
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

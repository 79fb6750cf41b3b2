import type pg from 'pg';
import type { ActualIndex, ActualTable, Catalog, IndexSignature, ManagedIndexRecord, ManagedSettingRecord } from './catalog.ts';
import { MANAGED_SETTINGS_SQL } from './vacuum-queries.ts';
import { indexesSql, MANAGED_INDEXES_SQL, RELATION_NAMES_SQL, SERVER_INFO_SQL, TABLES_SQL } from './queries.ts';

/** A table named by a policy: it gets exact sizes. */
export interface TableName {
  readonly schema: string;
  readonly name: string;
}

/** Counts round trips, so the benchmark and tests can hold introspection to a constant number. */
export interface CatalogSession {
  readonly client: pg.ClientBase;
  roundTrips: number;
  /** server_version_num, once introspection (or serverVersionOf) has read it. */
  serverVersion?: number;
}

export function catalogSession(client: pg.ClientBase): CatalogSession {
  return { client, roundTrips: 0 };
}

/** The server's version: what the session learnt already, else one query. */
export async function serverVersionOf(session: CatalogSession): Promise<number> {
  if (session.serverVersion === undefined) {
    const [row] = await query<{ v: number }>(session, `SELECT pg_catalog.current_setting('server_version_num')::int AS v`);
    session.serverVersion = row?.v ?? 0;
  }
  return session.serverVersion;
}

export async function query<R extends pg.QueryResultRow>(session: CatalogSession, text: string, values: unknown[] = []): Promise<R[]> {
  session.roundTrips += 1;
  const result = await session.client.query<R>({ text, values });
  return result.rows;
}

interface TableRow {
  oid: string;
  schema: string;
  name: string;
  relkind: string;
  parent_oid: string | null;
  partition_bound: string | null;
  partition_key: string | null;
  row_estimate: number;
  bytes: string;
  reloptions: string[];
  toast_reloptions: string[] | null;
  owner: string;
  acts_as_owner: boolean;
  creates_in_schema: boolean;
}

export interface SignatureRow {
  method: string;
  is_unique: boolean;
  nulls_not_distinct: boolean;
  key_count: number;
  columns: (string | null)[];
  expressions: (string | null)[] | null;
  opclasses: string[];
  collations: string[];
  options: number[];
  predicate: string | null;
}

interface IndexRow extends SignatureRow {
  oid: string;
  schema: string;
  name: string;
  table_oid: string;
  is_valid: boolean;
  is_primary: boolean;
  constraint_type: 'p' | 'u' | 'x' | null;
  parent_index_oid: string | null;
  reloptions: string[];
  bytes: string;
  scans: string;
}

export function parseSignature(row: SignatureRow): IndexSignature {
  const keys = row.columns.slice(0, row.key_count).map((column, i) => ({
    column,
    expression: column === null ? (row.expressions?.[i] ?? null) : null,
    opclass: Number(row.opclasses[i]),
    collation: Number(row.collations[i]),
    option: row.options[i] ?? 0,
  }));
  const include = row.columns.slice(row.key_count).map((c) => c ?? '');
  return {
    method: row.method,
    unique: row.is_unique,
    nullsNotDistinct: row.nulls_not_distinct,
    keys,
    include,
    predicate: row.predicate,
  };
}

function parseTable(row: TableRow): ActualTable {
  return {
    oid: Number(row.oid),
    schema: row.schema,
    name: row.name,
    kind: row.relkind === 'p' ? 'partitioned' : 'table',
    parentOid: row.parent_oid === null ? null : Number(row.parent_oid),
    partitionBound: row.partition_bound,
    partitionKey: row.partition_key,
    rowEstimate: Math.max(0, row.row_estimate),
    bytes: Number(row.bytes),
    reloptions: row.reloptions,
    toastReloptions: row.toast_reloptions,
    owner: row.owner,
    actsAsOwner: row.acts_as_owner,
    createsInSchema: row.creates_in_schema,
  };
}

function parseIndex(row: IndexRow): ActualIndex {
  return {
    oid: Number(row.oid),
    schema: row.schema,
    name: row.name,
    tableOid: Number(row.table_oid),
    valid: row.is_valid,
    primary: row.is_primary,
    constraintType: row.constraint_type,
    parentIndexOid: row.parent_index_oid === null ? null : Number(row.parent_index_oid),
    signature: parseSignature(row),
    reloptions: row.reloptions,
    bytes: Number(row.bytes),
    scans: Number(row.scans),
  };
}

/**
 * Reads the catalog in a fixed number of round trips whatever the database size: never one query per
 * table. Runs in a read-only transaction with an empty search_path (see queries.ts). With a `helper`
 * session (a second connection), the index rows, most of the time, are read there while the rest is read
 * here, both in one snapshot (exported here, imported there).
 */
export async function introspect(session: CatalogSession, named: readonly TableName[], helper?: CatalogSession): Promise<Catalog> {
  return (await introspectShared(session, named, helper)).catalog;
}

/** `introspect`, saying whether the helper took part (false: it could not share the snapshot, and must not be used). */
export async function introspectShared(
  session: CatalogSession,
  named: readonly TableName[],
  helper: CatalogSession | undefined,
): Promise<{ readonly catalog: Catalog; readonly shared: boolean }> {
  const schemas = named.map((t) => t.schema);
  const names = named.map((t) => t.name);
  await query(session, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''`);
  let shared = false;
  try {
    const [info] = await query<{ database: string; server_version: number; has_registry: boolean; has_setting_registry: boolean; snapshot: string | null }>(
      session,
      helper === undefined ? SERVER_INFO_SQL : `${SERVER_INFO_SQL}, pg_catalog.pg_export_snapshot() AS snapshot`,
    );
    if (!info) throw new Error('the server returned no version information');
    session.serverVersion = info.server_version;
    if (helper !== undefined) {
      helper.serverVersion = info.server_version;
      // A snapshot name is hex digits and dashes; SET TRANSACTION SNAPSHOT takes no bind parameter.
      if (!/^[0-9A-F-]+$/iu.test(info.snapshot ?? '')) throw new Error(`the server exported an unexpected snapshot name: ${String(info.snapshot)}`);
      // standard_conforming_strings as on the session: it decides how deparsed predicates spell a backslash.
      // A connection pooler may hand the second connection another server, which refuses the snapshot:
      // then everything is read here, as without a second connection.
      shared = await query(
        helper,
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '${info.snapshot}'; SET LOCAL search_path = ''; SET LOCAL standard_conforming_strings = on`,
      ).then(
        () => true,
        async () => {
          await query(helper, 'ROLLBACK').catch(() => undefined);
          return false;
        },
      );
    }
    const readIndexes = async (on: CatalogSession): Promise<ActualIndex[]> => (await query<IndexRow>(on, indexesSql(info.server_version))).map(parseIndex);
    const readRest = async (): Promise<Omit<Catalog, 'database' | 'serverVersion' | 'indexes'>> => {
      const tables = (await query<TableRow>(session, TABLES_SQL, [schemas, names])).map(parseTable);
      const relationRows = await query<{ schema: string; names: string[] }>(session, RELATION_NAMES_SQL, [[...new Set(schemas)]]);
      const managed = info.has_registry
        ? (
            await query<{ schema: string; name: string; table: string; policy_file: string | null; spec_hash: string | null; signature: string | null }>(
              session,
              MANAGED_INDEXES_SQL,
            )
          ).map(
            (r): ManagedIndexRecord => ({ schema: r.schema, name: r.name, table: r.table, policyFile: r.policy_file, specHash: r.spec_hash, signature: r.signature }),
          )
        : [];
      return {
        tables,
        managed,
        relationNames: new Map(relationRows.map((r) => [r.schema, new Set(r.names)])),
        // Only once pgwarden has applied a storage parameter does the registry exist (and cost a round trip).
        managedSettings: info.has_setting_registry ? await query<ManagedSettingRecord>(session, MANAGED_SETTINGS_SQL) : [],
      };
    };
    // Without a helper, one after the other on this connection, as before.
    const [indexes, rest] = !shared || helper === undefined ? [await readIndexes(session), await readRest()] : await Promise.all([readIndexes(helper), readRest()]);
    return { catalog: { database: info.database, serverVersion: info.server_version, indexes, ...rest }, shared };
  } finally {
    await Promise.all([query(session, 'COMMIT'), shared && helper !== undefined ? query(helper, 'COMMIT') : undefined]);
  }
}

import type { ActualRouting } from './actual-routing.ts';
import type { Canonical } from './canonicalise.ts';
import type { Catalog } from './catalog.ts';
import type { PartitionedTableInfo, RetiredPartition } from './partition-queries.ts';
import type { TableStats, VacuumSettings } from './table-statistics.ts';
import type { ActualConversions } from './read-conversions.ts';

/**
 * Everything a plan compares the policies against, read up front by `readActual()` in a fixed number of
 * round trips and never again: the diff works on this value alone and sees no raw row.
 */
export interface Actual {
  /** Tables, indexes, relation names and pgwarden's registries. */
  readonly catalog: Catalog;
  /**
   * What PostgreSQL makes of each declared index on an existing table, by `desiredKey()`: the signature
   * recorded when pgwarden built it, derived from catalog facts, or built on a scratch copy of the table.
   */
  readonly canonical: ReadonlyMap<string, Canonical>;
  /** The tables a `partitioning:` policy names, each with its partitions. */
  readonly partitions: readonly PartitionedTableInfo[];
  /** Partitions retention detached for `then: drop` whose DROP did not run. */
  readonly retired: readonly RetiredPartition[];
  /** Rows sitting in a DEFAULT partition in a range a policy wants a partition for. */
  readonly defaultRows: readonly DefaultRowCount[];
  /** `pg_get_indexdef` of the live indexes a plan may act on (display only), by `schema\0name`. */
  readonly indexDefinitions: ReadonlyMap<string, string>;
  /** What the primary and each replica say, when a `routing:` document exists. */
  readonly routing: ActualRouting | null;
  /** Activity counters and vacuum settings, when a vacuum policy exists (health floors). */
  readonly tableStatistics: TableStatistics | null;
  /** Plain tables a `partitioning:` policy names (to convert), and old tables finished conversions kept. */
  readonly conversions?: ActualConversions;
}

export interface DefaultRowCount {
  /** The partitioned table. */
  readonly schema: string;
  readonly table: string;
  /** The start of the range, an instant (UTC). */
  readonly start: Date;
  readonly rows: number;
}

export interface TableStatistics {
  readonly settings: VacuumSettings;
  readonly stats: readonly TableStats[];
}

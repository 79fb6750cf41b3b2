import type { SourcePos } from '../policy/desired.ts';
import type { IndexParameterSpec } from '../policy/index-storage-parameters.ts';
import type { TableRef } from './change.ts';

/**
 * A declared index whose storage parameters differ from the live ones where an `ALTER INDEX ... SET
 * (...), RESET (...)` makes them true without a rebuild (catalog only; pages already written keep
 * their layout until a REINDEX). A partitioned index, or a parameter that takes effect only when the
 * index is built (BRIN's pages_per_range), is a replace instead (engine/diff/index-diff.ts).
 */
export interface SetIndexParameters {
  readonly kind: 'set-index-parameters';
  /** `index:schema.table.name`, like the index's other changes. */
  readonly address: string;
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
  readonly index: { readonly schema: string; readonly name: string };
  /** The live reloptions (`fillfactor=70`), display only. */
  readonly before: readonly string[];
  readonly set: Readonly<Record<string, string>>;
  readonly reset: readonly string[];
  /** What ALTER INDEX takes on the index (never on the table). */
  readonly lock: IndexParameterSpec['lock'];
}

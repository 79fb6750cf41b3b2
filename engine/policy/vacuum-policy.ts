import type { DesiredTable, PolicyError, SourcePos } from './desired.ts';
import { isMapping, positionOf, type DataPath, type DocumentSource } from './document-source.ts';
import { schemaProblems } from './schema-problem.ts';
import { policyValidators } from './policy-validators.ts';
import { STORAGE_PARAMETERS } from './vacuum-schema.ts';

/**
 * The `vacuum:` block of a table policy and the `defaults:` document.
 *
 * @example
 * vacuum:
 *   autovacuum: { vacuum_scale_factor: 0.02, analyze_scale_factor: 0.01 }
 *   toast: { enabled: true }
 *   max_dead_ratio: 0.05      # maintain vacuums above this
 *   min_health: 0.95          # plan and health flag the table below this
 *   analyze_after_rows: 10000 # maintain analyzes after this many changed rows
 *   analyze_after: 1d         # ... or when the statistics are older than this and the table changed
 */

/** One storage parameter as PostgreSQL stores it: `autovacuum_vacuum_scale_factor` = `0.02`, or `toast.` + name. */
export interface DesiredStorageSetting {
  readonly parameter: string;
  /** The value as PostgreSQL text (`true`, `0.02`, `auto`). Compared by meaning, never as text. */
  readonly value: string;
  readonly source: SourcePos;
}

export interface DesiredVacuum {
  /** Storage parameters to keep on the table (on every leaf partition of a partitioned table). */
  readonly settings: readonly DesiredStorageSetting[];
  /** `maintain` vacuums above this share of dead tuples. */
  readonly maxDeadRatio?: number;
  /** The health floor: `plan` and `health` flag the table below it, `maintain` restores it. */
  readonly minHealth?: number;
  /** `maintain` analyzes once this many rows changed since the last ANALYZE. */
  readonly analyzeAfterRows?: number;
  /** `maintain` analyzes a table that changed when its statistics are older than this. */
  readonly analyzeAfterMs?: number;
  /** The `vacuum:` key this came from: the table's own, or the defaults document's. */
  readonly source: SourcePos;
}

/** Used by `maintain` when a governed table's policy leaves a threshold out. */
export const DEFAULT_MAX_DEAD_RATIO = 0.1;
export const DEFAULT_MIN_HEALTH = 0.9;

type Report = (path: DataPath, message: string, hint?: string) => void;

/**
 * Converts a `vacuum:` block that passed the schema (types, ranges, unknown keys) into its desired
 * form; reports what the schema cannot check. `at` is where the block sits in the document.
 */
export function readVacuum(data: unknown, at: DataPath, source: DocumentSource): { vacuum?: DesiredVacuum; errors: PolicyError[] } {
  const errors: PolicyError[] = [];
  const report: Report = (path, message, hint) => {
    errors.push({ ...positionOf(source, path), message, ...(hint === undefined ? {} : { hint }) });
  };
  if (!isMapping(data)) return { errors };
  const settings: DesiredStorageSetting[] = [];
  for (const [block, prefix] of [['autovacuum', ''], ['toast', 'toast.']] as const) {
    const values = data[block];
    if (!isMapping(values)) continue;
    for (const spec of STORAGE_PARAMETERS) {
      const value = values[spec.key];
      if (value === undefined) continue;
      settings.push({ parameter: `${prefix}${spec.reloption}`, value: String(value), source: positionOf(source, [...at, block, spec.key]) });
    }
  }
  const analyzeAfter = data['analyze_after'];
  let analyzeAfterMs: number | undefined;
  if (typeof analyzeAfter === 'string') {
    analyzeAfterMs = parseAge(analyzeAfter);
    if (analyzeAfterMs === undefined) {
      report([...at, 'analyze_after'], `"analyze_after" must be a duration like 30m, 12h or 7d, got ${JSON.stringify(analyzeAfter)}`, 'units: s, m, h, d');
    }
  }
  const number = (key: string): number | undefined => (typeof data[key] === 'number' ? data[key] : undefined);
  const maxDeadRatio = number('max_dead_ratio');
  const minHealth = number('min_health');
  const analyzeAfterRows = number('analyze_after_rows');
  if (errors.length > 0) return { errors };
  return {
    errors,
    vacuum: {
      settings,
      ...(maxDeadRatio === undefined ? {} : { maxDeadRatio }),
      ...(minHealth === undefined ? {} : { minHealth }),
      ...(analyzeAfterRows === undefined ? {} : { analyzeAfterRows }),
      ...(analyzeAfterMs === undefined ? {} : { analyzeAfterMs }),
      source: positionOf(source, at, 'key'),
    },
  };
}

/** `30s`, `30m`, `12h`, `7d` (a positive whole or decimal number and a unit). */
export function parseAge(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$/u.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return ms > 0 ? ms : undefined;
}

/** What one `defaults:` document yields. */
export interface DefaultsDocument {
  readonly errors: readonly PolicyError[];
  readonly vacuum?: DesiredVacuum;
  /** The `defaults:` key, for "declared twice" messages. */
  readonly source: SourcePos;
}

export function readDefaultsDocument(data: Readonly<Record<string, unknown>>, source: DocumentSource): DefaultsDocument {
  const validateDefaults = policyValidators().defaults;
  const position = positionOf(source, ['defaults'], 'key');
  const errors: PolicyError[] = [];
  const valid = validateDefaults(data);
  for (const problem of schemaProblems(validateDefaults.errors ?? [])) {
    errors.push({ ...positionOf(source, problem.path, problem.part), message: problem.message, ...(problem.hint === undefined ? {} : { hint: problem.hint }) });
  }
  if (!valid) return { errors, source: position };
  const block = isMapping(data['defaults']) ? data['defaults']['vacuum'] : undefined;
  if (block === undefined) return { errors, source: position };
  const read = readVacuum(block, ['defaults', 'vacuum'], source);
  return { errors: read.errors, ...(read.vacuum === undefined ? {} : { vacuum: read.vacuum }), source: position };
}

/** At most one `defaults:` document: a second one is an error pointing at both. */
export function singleDefaults(documents: readonly DefaultsDocument[]): { vacuum?: DesiredVacuum; errors: PolicyError[] } {
  const [first, ...others] = documents;
  const errors = others.map((other) => ({
    ...other.source,
    message: `a second defaults document; the first is at ${first?.source.file}:${first?.source.line}:${first?.source.col}`,
    hint: 'merge them into one `defaults:` document',
  }));
  return { errors, ...(first?.vacuum === undefined ? {} : { vacuum: first.vacuum }) };
}

/**
 * A table's effective vacuum policy: its own keys over the defaults', one by one (a storage parameter
 * the table leaves out comes from the defaults; so does each threshold).
 */
export function mergeVacuum(own: DesiredVacuum | undefined, defaults: DesiredVacuum | undefined): DesiredVacuum | undefined {
  if (own === undefined) return defaults;
  if (defaults === undefined) return own;
  const declared = new Set(own.settings.map((s) => s.parameter));
  const pick = <K extends 'maxDeadRatio' | 'minHealth' | 'analyzeAfterRows' | 'analyzeAfterMs'>(key: K): Partial<Pick<DesiredVacuum, K>> => {
    const value = own[key] ?? defaults[key];
    return (value === undefined ? {} : { [key]: value }) as Partial<Pick<DesiredVacuum, K>>;
  };
  return {
    settings: [...defaults.settings.filter((s) => !declared.has(s.parameter)), ...own.settings],
    ...pick('maxDeadRatio'),
    ...pick('minHealth'),
    ...pick('analyzeAfterRows'),
    ...pick('analyzeAfterMs'),
    source: own.source,
  };
}

/** Every table with the defaults merged into its own vacuum policy. */
export function withVacuumDefaults(tables: readonly DesiredTable[], defaults: DesiredVacuum | undefined): DesiredTable[] {
  return tables.map((table) => {
    const vacuum = mergeVacuum(table.vacuum, defaults);
    return vacuum === undefined ? table : { ...table, vacuum };
  });
}

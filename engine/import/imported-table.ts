import type { ActualIndex, ActualTable, Catalog, IndexKeySignature } from '../catalog/catalog.ts';
import type { ImportFacts } from '../catalog/import-queries.ts';
import type { PartitionedTableInfo } from '../catalog/partition-queries.ts';
import { diffPartitions } from '../diff/partition-diff.ts';
import { addIntervals, intervalStart, partitionName } from '../diff/partition-interval.ts';
import type { DesiredTable, IndexMethod } from '../policy/desired.ts';
import { indexParameterSpec, parameterValue, readReloptions } from '../policy/index-storage-parameters.ts';
import { defaultNaming, partitionIntervals, type DesiredPartitioning, type PartitionInterval } from '../policy/partitioning-policy.ts';
import { indexMethods } from '../policy/schema.ts';
import { parameterSpec } from '../policy/vacuum-schema.ts';

/**
 * What `pgwarden import` makes of one table: its policy document as plain data (keys in the order a
 * person would write them), the comments that go with it, and what the format cannot say. Pure: the
 * catalog was read before; nothing here touches the database or the files.
 */
export interface ImportedTable {
  readonly schema: string;
  readonly name: string;
  /** The document: `table`, `managed`, `indexes`, maybe `partitioning` and `vacuum`. */
  readonly document: Readonly<Record<string, unknown>>;
  /** Index entries, by name (also inside `document.indexes`). */
  readonly indexes: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
  /** Lines of the comment written above the document (without `# `). */
  readonly comments: readonly string[];
  /** What the format cannot express, one sentence each (also in `comments`). */
  readonly unexpressed: readonly string[];
}

export interface ImportFilter {
  /** Only these schemas (empty: every user schema). */
  readonly schemas: readonly string[];
  /** Only tables whose `schema.table` matches one of these globs (empty: all). */
  readonly tables: readonly string[];
}

/** `*` any run of characters, `?` one, `[abc]` a class; everything else literal. */
export function globMatcher(pattern: string): (text: string) => boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i] as string;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/gu, '\\\\');
        source += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/gu, '\\$&');
  }
  const re = new RegExp(`^${source}$`, 'su');
  return (text) => re.test(text);
}

const INDOPTION_DESC = 1;
const INDOPTION_NULLS_FIRST = 2;
/** DEFAULT_COLLATION_OID: what a collatable expression gets unless it says otherwise. */
const DEFAULT_COLLATION = 100;

/** An operator class or collation name as the policy writes it: bare in pg_catalog, else `schema.name`. */
function objectName(schema: string, name: string): string {
  return schema === 'pg_catalog' && !name.includes('.') ? name : `${schema}.${name}`;
}

const plainColumn = /^[\p{L}_][\p{L}\p{M}\p{N}_$]*$/u;

function keyEntry(key: IndexKeySignature, i: number, index: ActualIndex, facts: ImportFacts): string | Record<string, unknown> {
  const ordered = index.signature.method === 'btree';
  const desc = ordered && (key.option & INDOPTION_DESC) !== 0;
  const nullsFirst = ordered && (key.option & INDOPTION_NULLS_FIRST) !== 0;
  const keyFacts = facts.indexKeys.get(index.oid);
  const type = keyFacts?.types[i] ?? 0;
  const opclass = facts.opclasses.get(key.opclass);
  // The default operator class of the key's own type is what PostgreSQL picks when none is written;
  // anything else (another class, or a default one reached by coercion) is written out, which is exact.
  const explicitOpclass = opclass !== undefined && !(opclass.isDefault && opclass.inputType === type) ? objectName(opclass.schema, opclass.name) : undefined;
  const columnCollation = keyFacts?.collations[i] ?? 0;
  const natural = key.column !== null ? columnCollation : DEFAULT_COLLATION;
  const collation = key.collation !== 0 && key.collation !== natural ? facts.collations.get(key.collation) : undefined;
  const order = desc ? 'desc' : undefined;
  const nulls = desc !== nullsFirst ? (nullsFirst ? 'first' : 'last') : undefined;
  if (key.column !== null && explicitOpclass === undefined && collation === undefined && plainColumn.test(key.column) && !/^(asc|desc|nulls)$/iu.test(key.column)) {
    return [key.column, order, nulls === undefined ? undefined : `nulls ${nulls}`].filter((p) => p !== undefined).join(' ');
  }
  return {
    ...(key.column !== null ? { column: key.column } : { expression: key.expression ?? '' }),
    ...(order === undefined ? {} : { order }),
    ...(nulls === undefined ? {} : { nulls }),
    ...(explicitOpclass === undefined ? {} : { opclass: explicitOpclass }),
    ...(collation === undefined ? {} : { collation: objectName(collation.schema, collation.name) }),
  };
}

/**
 * A stored reloption as the policy writes it: booleans `true`/`false` as YAML booleans and `on`/`off`
 * as those words (so a rebuild stores the same text), numbers as numbers; undefined when the text is
 * a spelling the format does not keep (`0x50`, `yes`): then the value PostgreSQL reads from it.
 */
function parameterEntry(name: string, text: string): boolean | number | string | undefined {
  const spec = indexParameterSpec(name);
  if (spec === undefined) return undefined;
  if (spec.type.kind === 'boolean') {
    if (text === 'on' || text === 'off') return text;
    const value = parameterValue(spec, text);
    return typeof value === 'boolean' ? value : undefined;
  }
  return parameterValue(spec, text);
}

function indexEntry(table: ActualTable, index: ActualIndex, facts: ImportFacts, notes: string[]): Record<string, unknown> | undefined {
  const s = index.signature;
  const note = (text: string): void => {
    notes.push(`${table.schema}.${table.name}: ${text}`);
  };
  if (!(indexMethods as readonly string[]).includes(s.method)) {
    note(`index ${index.name} uses access method ${s.method}, which the format does not know; it is left undeclared`);
    return undefined;
  }
  const method = s.method as IndexMethod;
  if (facts.indexKeys.get(index.oid)?.opclassOptions) {
    note(`index ${index.name} gives its operator class parameters (such as siglen), which the format cannot express; it is left undeclared`);
    return undefined;
  }
  const withEntries: [string, unknown][] = [];
  for (const [name, text] of readReloptions(index.reloptions)) {
    const value = parameterEntry(name, text);
    const spec = indexParameterSpec(name);
    if (value === undefined || spec === undefined || !(method in spec.methods)) {
      note(`index ${index.name} has storage parameter ${name}=${text}, which the format cannot express; it is left undeclared`);
      return undefined;
    }
    withEntries.push([name, value]);
  }
  return {
    name: index.name,
    ...(method === 'btree' ? {} : { method }),
    ...(s.unique ? { unique: true } : {}),
    ...(s.nullsNotDistinct ? { nulls_not_distinct: true } : {}),
    columns: s.keys.map((key, i) => keyEntry(key, i, index, facts)),
    ...(s.include.length > 0 ? { include: [...s.include] } : {}),
    ...(s.predicate === null ? {} : { where: s.predicate }),
    ...(withEntries.length > 0 ? { with: Object.fromEntries(withEntries) } : {}),
  };
}

/** Autovacuum reloptions as the `vacuum:` block; anything else a table has set is reported. */
function vacuumBlock(table: ActualTable, notes: string[]): Record<string, unknown> | undefined {
  const main: Record<string, unknown> = {};
  const toast: Record<string, unknown> = {};
  const read = (entries: readonly string[], into: Record<string, unknown>, prefix: string): void => {
    for (const [name, text] of readReloptions(entries)) {
      const spec = parameterSpec(name);
      if (spec === undefined) {
        notes.push(`${table.schema}.${table.name} has table storage parameter ${prefix}${name}=${text}, which is not part of the format; pgwarden leaves it as it is`);
        continue;
      }
      const value = spec.type === 'boolean' ? /^(t|tr|tru|true|y|ye|yes|on|1)$/iu.test(text) : spec.type === 'enum' ? text.toLowerCase() : Number(text);
      into[spec.key] = value;
    }
  };
  read(table.reloptions, main, '');
  read(table.toastReloptions ?? [], toast, 'toast.');
  if (Object.keys(main).length === 0 && Object.keys(toast).length === 0) return undefined;
  return { ...(Object.keys(main).length > 0 ? { autovacuum: main } : {}), ...(Object.keys(toast).length > 0 ? { toast } : {}) };
}

/** The interval one partition's range spans, when it is exactly one aligned interval. */
function spanOf(from: Date, to: Date): PartitionInterval | undefined {
  return partitionIntervals.find((interval) => intervalStart(from, interval).getTime() === from.getTime() && addIntervals(from, interval, 1).getTime() === to.getTime());
}

/** Naming patterns tried, in order, against the existing partitions' names: the default first. */
function namingCandidates(interval: PartitionInterval): string[] {
  const date = defaultNaming[interval].replace('{table}_', '');
  const compact = date.replaceAll('}_{', '}{');
  return [...new Set(['{table}_', '{table}_p', '{table}_y', '{table}'].flatMap((prefix) => [`${prefix}${date}`, `${prefix}${compact}`]))];
}

/**
 * A `partitioning:` block matching what exists, kept in force only when plan would do nothing with it
 * (checked with the plan's own partition diff): one range column of a time type, every partition one
 * aligned interval, no gap up to the current one. `premake` is what already exists ahead of now, so it
 * creates nothing; a larger one and a retention are suggested in a comment, never guessed into force.
 */
function partitioningBlock(
  table: ActualTable,
  info: PartitionedTableInfo | undefined,
  now: Date,
  notes: string[],
  comments: string[],
): Record<string, unknown> | undefined {
  const cannot = (why: string): undefined => {
    notes.push(`${table.schema}.${table.name} is partitioned ${why}; pgwarden manages range partitioning by time only, so its partitions are left as they are (its indexes are declared)`);
    return undefined;
  };
  const strategy = /^(RANGE|LIST|HASH)/u.exec(table.partitionKey ?? '')?.[1];
  if (strategy !== undefined && strategy !== 'RANGE') return cannot(`by ${strategy.toLowerCase()}`);
  if (info === undefined) return cannot('in a way pgwarden could not read');
  const [column] = info.keyColumns;
  if (info.keyColumns.length !== 1 || column === null || column === undefined) return cannot('on a multi-column or expression key');
  const ranges = info.partitions.filter((p) => !p.isDefault);
  if (ranges.some((p) => p.partitioned)) return cannot('on two levels (sub-partitioned)');
  const spans = new Set<PartitionInterval | undefined>();
  for (const p of ranges) {
    const from = p.from === null ? Number.NaN : Date.parse(p.from);
    const to = p.to === null ? Number.NaN : Date.parse(p.to);
    spans.add(Number.isNaN(from) || Number.isNaN(to) ? undefined : spanOf(new Date(from), new Date(to)));
  }
  const [interval] = spans;
  if (spans.size !== 1 || interval === undefined) return cannot(`by range on ${column} with bounds that are not one regular day, week, month, quarter or year`);
  const current = intervalStart(now, interval);
  const ahead = ranges.filter((p) => p.from !== null && Date.parse(p.from) > current.getTime()).length;
  const naming = namingCandidates(interval).find((pattern) => ranges.every((p) => p.from !== null && p.name === partitionName(pattern, table.name, new Date(Date.parse(p.from))))) ?? defaultNaming[interval];
  const defaultPartition = info.partitions.find((p) => p.isDefault);
  const block = {
    by: 'range',
    column,
    interval,
    premake: ahead,
    ...(naming === defaultNaming[interval] ? {} : { naming }),
    ...(defaultPartition === undefined ? {} : { default_partition: true }),
  };
  const desired: DesiredPartitioning = {
    by: 'range',
    column,
    interval,
    premake: ahead,
    defaultPartition: defaultPartition !== undefined,
    naming,
    source: { file: '', line: 0, col: 0 },
    columnSource: { file: '', line: 0, col: 0 },
  };
  const asTable: DesiredTable = { schema: table.schema, name: table.name, managed: 'partial', indexes: [], partitioning: desired, source: desired.source };
  const diff = diffPartitions({ desired: { tables: [asTable], files: [] }, tables: [info], now });
  const planned = [...diff.before, ...diff.after];
  if (planned.length > 0 || diff.errors.length > 0) {
    const first = planned[0]?.reason ?? diff.errors[0]?.message ?? '';
    comments.push(
      `partitioning (not in force: plan would change partitions with it${first ? `: ${first}` : ''}):`,
      ...blockLines(block),
    );
    notes.push(`${table.schema}.${table.name}: its partitioning is written as a comment, not in force, because plan would change partitions with it${first ? ` (${first})` : ''}`);
    return undefined;
  }
  const days = interval === 'day' ? 1 : interval === 'week' ? 7 : 0;
  comments.push(
    `partitioning: premake is what exists ahead of ${now.toISOString().slice(0, 10)} (${ahead}); raise it to keep partitions ready, e.g. premake: ${Math.max(ahead, days > 0 ? 7 : 3)}`,
    `partitioning: no retention was guessed; to drop or detach old partitions add e.g. retention: { keep: ${Math.max(ranges.length, 12)}, then: detach }`,
  );
  return block;
}

function blockLines(block: Record<string, unknown>): string[] {
  return ['  partitioning:', ...Object.entries(block).map(([k, v]) => `    ${k}: ${String(v)}`)];
}

/** What `table:` (and `schema:`) say for a table: `name` in public, `schema.name`, or both keys for dotted names. */
function identity(table: ActualTable): Record<string, string> {
  if (table.schema.includes('.') || table.name.includes('.')) return { schema: table.schema, table: table.name };
  return { table: table.schema === 'public' ? table.name : `${table.schema}.${table.name}` };
}

export interface ImportInput {
  readonly catalog: Catalog;
  readonly facts: ImportFacts;
  readonly partitions: readonly PartitionedTableInfo[];
  readonly filter: ImportFilter;
  readonly now: Date;
}

/** The tables import writes policies for: user tables the filter selects, not an extension's. */
export function selectedTables(catalog: Catalog, facts: ImportFacts, filter: ImportFilter): ActualTable[] {
  const globs = filter.tables.map(globMatcher);
  return catalog.tables.filter(
    (t) =>
      !facts.extensionOwned.has(t.oid) &&
      (filter.schemas.length === 0 || filter.schemas.includes(t.schema)) &&
      (globs.length === 0 || globs.some((match) => match(`${t.schema}.${t.name}`))),
  );
}

export function importTables(input: ImportInput): ImportedTable[] {
  const { catalog, facts, now } = input;
  const indexesOf = new Map<number, ActualIndex[]>();
  for (const index of catalog.indexes) indexesOf.set(index.tableOid, [...(indexesOf.get(index.tableOid) ?? []), index]);
  const infos = new Map(input.partitions.map((p) => [p.oid, p]));
  const out: ImportedTable[] = [];
  for (const table of selectedTables(catalog, facts, input.filter)) {
    const notes: string[] = [];
    const comments: string[] = [];
    const entries = new Map<string, Record<string, unknown>>();
    // Constraint indexes belong to the constraint (as in plan); a partition's index attached to its
    // parent's is declared once, on the parent.
    const own = (indexesOf.get(table.oid) ?? []).filter((i) => i.constraintType === null && i.parentIndexOid === null && !facts.extensionOwned.has(i.oid));
    for (const index of own.sort((a, b) => a.oid - b.oid)) {
      if (!index.valid) {
        notes.push(`${table.schema}.${table.name}: index ${index.name} is INVALID (a failed concurrent build); it is left undeclared — drop it, or declare it and plan rebuilds it`);
        continue;
      }
      const entry = indexEntry(table, index, facts, notes);
      if (entry !== undefined) entries.set(index.name, entry);
    }
    // A sub-partitioned partition is its parent's business: the parent's note says so.
    const partitioning = table.kind === 'partitioned' && table.parentOid === null ? partitioningBlock(table, infos.get(table.oid), now, notes, comments) : undefined;
    const vacuum = table.kind === 'table' ? vacuumBlock(table, notes) : undefined;
    // A partition with nothing of its own to declare needs no file: its parent's policy covers it.
    if (table.parentOid !== null && entries.size === 0 && vacuum === undefined && notes.length === 0) continue;
    const document = {
      ...identity(table),
      managed: 'partial',
      indexes: [...entries.values()],
      ...(partitioning === undefined ? {} : { partitioning }),
      ...(vacuum === undefined ? {} : { vacuum }),
    };
    out.push({
      schema: table.schema,
      name: table.name,
      document,
      indexes: entries,
      comments: [...comments, ...notes.map((n) => `not expressible: ${n}`)],
      unexpressed: notes,
    });
  }
  return out;
}


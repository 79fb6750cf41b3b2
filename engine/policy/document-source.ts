import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { SourcePos } from './desired.ts';

/** One parsed YAML document with what is needed to point back into its file. */
export interface DocumentSource {
  /** The file as shown to the user (see `loadPolicies`). */
  readonly file: string;
  readonly document: Document.Parsed;
  readonly lineCounter: LineCounter;
}

/** A path into a document's data: mapping keys and list indexes, as ajv's instancePath spells them. */
export type DataPath = readonly (string | number)[];

/** `key`: the mapping key the path ends at (for "unknown key"); `value`: the node at the path. */
export type PathPart = 'key' | 'value';

export function positionAt(source: DocumentSource, offset: number): SourcePos {
  const { line, col } = source.lineCounter.linePos(offset);
  return { file: source.file, line, col };
}

/**
 * Where the node at `path` starts. When the path leads nowhere (a value the YAML leaves empty, say),
 * the nearest enclosing node is used, so every message still lands on the right line.
 */
export function positionOf(source: DocumentSource, path: DataPath, part: PathPart = 'value'): SourcePos {
  let node = resolve(source, source.document.contents);
  let offset = node?.range?.[0] ?? 0;
  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && keyText(item.key) === String(segment));
      if (pair === undefined) break;
      const key = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? pair.key : undefined;
      if (last && part === 'key') return positionAt(source, key?.range?.[0] ?? offset);
      offset = key?.range?.[0] ?? offset;
      node = resolve(source, pair.value);
    } else if (isSeq(node)) {
      node = resolve(source, node.items[Number(segment)]);
    } else {
      break;
    }
    // A key written without a value (`unique:`) still has a node: an empty scalar just after the colon.
    offset = node?.range?.[0] ?? offset;
  }
  return positionAt(source, offset);
}

/** A YAML mapping as `toJS()` returns it. */
export function isMapping(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolve(source: DocumentSource, value: unknown): Node | undefined {
  if (isAlias(value)) return value.resolve(source.document);
  return isScalar(value) || isMap(value) || isSeq(value) ? value : undefined;
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

import { access, constants, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, isSeq, parseAllDocuments, Scalar, YAMLSeq, type Node, type YAMLMap } from 'yaml';
import type { ImportedTable } from './imported-table.ts';
import { policyText } from './policy-text.ts';

/**
 * Where import's policies go, and how: a table that already has a document somewhere in the
 * directory is merged into it with the `yaml` document API (its comments, key order and every entry
 * the user wrote stay; indexes new in the database are appended; indexes gone from the database are
 * reported, and removed only with `prune`); a table without one gets a new file named after it.
 * Everything is worked out before anything is written, and a mistake (a file that does not parse, a
 * name taken by another table's file) stops the whole import with nothing written.
 */
export interface FileWrite {
  /** Relative to the policies directory, with `/`. */
  readonly file: string;
  readonly action: 'create' | 'update';
  readonly before: string;
  readonly after: string;
}

export interface TableOutcome {
  readonly table: string;
  readonly file: string;
  /** Index entries written into the file. */
  readonly added: readonly string[];
  /** Declared in the file but no longer in the database (removed with `prune`). */
  readonly vanished: readonly string[];
  readonly pruned: boolean;
}

export interface ImportWrites {
  readonly writes: readonly FileWrite[];
  readonly tables: readonly TableOutcome[];
}

export class ImportFileError extends Error {}

const WRITE_BATCH = 64;

interface Located {
  readonly file: string;
  readonly index: number;
}

/** `schema.table` of a document, as the loader reads `table:` and `schema:`. */
function documentTable(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const record = data as Record<string, unknown>;
  const table = record['table'];
  const schema = record['schema'];
  if (typeof table !== 'string') return undefined;
  if (typeof schema === 'string') return `${schema}\u0000${table}`;
  const parts = table.split('.');
  return parts.length === 1 ? `public\u0000${table}` : parts.length === 2 ? `${parts[0]}\u0000${parts[1]}` : undefined;
}

async function policyFiles(dir: string, displayDir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    const why = error.code === 'EACCES' ? 'permission denied' : error.code === 'ENOTDIR' ? 'a file is in the way (not a directory)' : error.message;
    throw new ImportFileError(`cannot write the policies to ${displayDir}: ${why}; import wrote nothing`);
  });
  return entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && /\.ya?ml$/u.test(e.name))
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A file name for a new table policy: `<table>.yaml` in public, `<schema>.<table>.yaml` elsewhere. */
export function policyFileName(schema: string, table: string): string {
  const safe = (s: string): string => s.replace(/[^\p{L}\p{N}_.-]+/gu, '_').replace(/^\.+/u, '_');
  return schema === 'public' ? `${safe(table)}.yaml` : `${safe(schema)}.${safe(table)}.yaml`;
}

/** Flow style where policies use it: key lists, include lists, storage parameters, key objects. */
function styleEntry(node: YAMLMap): void {
  for (const key of ['columns', 'include']) {
    const list = node.get(key, true);
    if (isSeq(list)) list.flow = true;
  }
  const params = node.get('with', true);
  if (isMap(params)) params.flow = true;
  const where = node.get('where', true);
  if (where instanceof Scalar) where.type = 'QUOTE_DOUBLE';
}

export interface NewFileHeader {
  readonly modeline: string;
  /** `Imported by pgwarden import on ... from ...`. */
  readonly provenance: string;
}

function newFileText(table: ImportedTable, header: NewFileHeader): string {
  return policyText([header.modeline.replace(/^# ?/u, ''), header.provenance, ...table.comments], table.document);
}

function indexNames(seq: YAMLSeq): string[] {
  return seq.items.map((item) => (isMap(item) ? item.get('name') : undefined)).map((n) => (typeof n === 'string' ? n : ''));
}

/** Merges one table into its document; returns what changed. */
function mergeInto(doc: Document, table: ImportedTable, prune: boolean): { added: string[]; vanished: string[]; keysAdded: boolean } {
  const contents = doc.contents;
  if (!isMap(contents)) return { added: [], vanished: [], keysAdded: false };
  let keysAdded = false;
  let seq = contents.get('indexes', true) as Node | undefined;
  if (!isSeq(seq)) {
    const existing = contents.get('indexes');
    if (existing !== undefined && existing !== null) throw new ImportFileError(`its \`indexes:\` is not a list`);
    seq = new YAMLSeq();
    contents.set('indexes', seq);
    keysAdded = true;
  }
  const list = seq as YAMLSeq;
  const declared = indexNames(list);
  const added: string[] = [];
  for (const [name, entry] of table.indexes) {
    if (declared.includes(name)) continue;
    const node = doc.createNode(entry) as YAMLMap;
    styleEntry(node);
    list.add(node);
    added.push(name);
  }
  const vanished = declared.filter((name) => name !== '' && !table.indexes.has(name));
  if (prune) {
    for (let i = list.items.length - 1; i >= 0; i -= 1) if (vanished.includes(indexNames(list)[i] ?? '')) list.delete(i);
  }
  // The document's other keys (partitioning, vacuum, managed) are the user's: import adds indexes only.
  if (added.length > 0 && list.flow && list.items.length > 0) {
    list.flow = false;
    keysAdded = true;
  }
  return { added, vanished, keysAdded };
}

/**
 * Works out every file import writes. `dir` is the policies directory (absolute); `displayDir` how the
 * user wrote it, for messages.
 */
export async function planImportWrites(
  dir: string,
  displayDir: string,
  tables: readonly ImportedTable[],
  options: { readonly prune: boolean; readonly header: NewFileHeader; readonly extra?: readonly { file: string; text: string }[] },
): Promise<ImportWrites> {
  const files = await policyFiles(dir, displayDir);
  const texts = new Map<string, string>();
  const documents = new Map<string, Document[]>();
  const located = new Map<string, Located>();
  for (const file of files) {
    const text = await readFile(path.join(dir, file), 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new ImportFileError(`cannot read ${path.join(displayDir, file)}: ${error.code === 'EACCES' ? 'permission denied' : error.message}; import wrote nothing`);
    });
    const docs = parseAllDocuments(text);
    const broken = docs.flatMap((d) => d.errors)[0];
    if (broken !== undefined) {
      const [line, col] = broken.linePos?.[0] ? [broken.linePos[0].line, broken.linePos[0].col] : [1, 1];
      throw new ImportFileError(`${path.join(displayDir, file)}:${line}:${col}: the file does not parse (${broken.message.split('\n')[0]}); fix it, then import again; import wrote nothing`);
    }
    texts.set(file, text);
    documents.set(file, docs);
    docs.forEach((d, index) => {
      const key = documentTable(d.toJS());
      if (key !== undefined && !located.has(key)) located.set(key, { file, index });
    });
  }

  const writes: FileWrite[] = [];
  const outcomes: TableOutcome[] = [];
  const touched = new Set<string>();
  /** Entries appended to a document's block list, by file: spliced into the text when that is all that changed. */
  const appends = new Map<string, { index: number; entries: Readonly<Record<string, unknown>>[] }[]>();
  const restructured = new Set<string>();
  const created = new Map<string, string>();
  for (const table of tables) {
    const key = `${table.schema}\u0000${table.name}`;
    const shown = `${table.schema}.${table.name}`;
    const at = located.get(key);
    if (at !== undefined) {
      const doc = documents.get(at.file)?.[at.index];
      if (doc === undefined) continue;
      let merged: { added: string[]; vanished: string[]; keysAdded: boolean };
      try {
        merged = mergeInto(doc, table, options.prune);
      } catch (error) {
        throw new ImportFileError(`${path.join(displayDir, at.file)}: the policy of ${shown} cannot be merged: ${(error as Error).message}; import wrote nothing`);
      }
      if (merged.added.length > 0 || (options.prune && merged.vanished.length > 0)) touched.add(at.file);
      if ((options.prune && merged.vanished.length > 0) || merged.keysAdded) restructured.add(at.file);
      if (merged.added.length > 0) {
        const list = appends.get(at.file) ?? [];
        list.push({ index: at.index, entries: merged.added.map((name) => table.indexes.get(name) ?? {}) });
        appends.set(at.file, list);
      }
      outcomes.push({ table: shown, file: at.file, added: merged.added, vanished: merged.vanished, pruned: options.prune && merged.vanished.length > 0 });
      continue;
    }
    const file = policyFileName(table.schema, table.name);
    if (texts.has(file)) {
      throw new ImportFileError(`${path.join(displayDir, file)} exists and holds no policy of ${shown}, which import would write there; rename that file or move ${shown}'s policy into it, then import again; import wrote nothing`);
    }
    const other = created.get(file);
    if (other !== undefined) {
      throw new ImportFileError(`tables ${other} and ${shown} would both be written to ${path.join(displayDir, file)}; import them separately (--table), or write one policy by hand first; import wrote nothing`);
    }
    created.set(file, shown);
    writes.push({ file, action: 'create', before: '', after: newFileText(table, options.header) });
    outcomes.push({ table: shown, file, added: [...table.indexes.keys()], vanished: [], pruned: false });
  }
  for (const file of touched) {
    const before = texts.get(file) ?? '';
    const docs = documents.get(file) ?? [];
    const whole = joinDocuments(docs);
    const spliced = restructured.has(file) ? undefined : spliceAppends(before, appends.get(file) ?? []);
    // The splice keeps every byte the user wrote; it is used only when it reads back as the document API's result.
    const after = spliced !== undefined && sameData(spliced, whole) ? spliced : whole;
    writes.push({ file, action: 'update', before, after });
  }
  for (const extra of options.extra ?? []) {
    if (texts.has(extra.file) || created.has(extra.file)) continue;
    writes.push({ file: extra.file, action: 'create', before: '', after: extra.text });
  }
  return { writes: writes.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)), tables: outcomes };
}

/**
 * The new entries written into the file's own text at the end of each document's `indexes:` block
 * list, indented like its first item: nothing else in the file changes. undefined when a list is not
 * a block list with items (then the document API writes the file).
 */
function spliceAppends(text: string, appends: readonly { index: number; entries: Readonly<Record<string, unknown>>[] }[]): string | undefined {
  const docs = parseAllDocuments(text);
  const edits: { at: number; body: string }[] = [];
  for (const { index, entries } of appends) {
    const seq = docs[index]?.get('indexes', true);
    if (!isSeq(seq) || seq.flow || seq.items.length === 0) return undefined;
    const first = seq.items[0] as { range?: [number, number, number] } | undefined;
    const last = seq.items[seq.items.length - 1] as { range?: [number, number, number] } | undefined;
    if (first?.range === undefined || last?.range === undefined) return undefined;
    const lineStart = text.lastIndexOf('\n', first.range[0] - 1) + 1;
    const dash = /^( *)- *$/u.exec(text.slice(lineStart, first.range[0]));
    if (dash === null) return undefined;
    const rendered = new Document(entries);
    for (const item of (rendered.contents as YAMLSeq).items) if (isMap(item)) styleEntry(item);
    const pad = dash[1] ?? '';
    const body = rendered
      .toString({ lineWidth: 0, flowCollectionPadding: false })
      .split('\n')
      .map((line) => (line === '' ? line : `${pad}${line}`))
      .join('\n');
    // After the last item's own text: its trailing comment lines stay where they are.
    const end = last.range[1];
    const nl = text.indexOf('\n', end > 0 && text[end - 1] === '\n' ? end - 1 : end);
    edits.push({ at: nl === -1 ? text.length : nl + 1, body });
  }
  let out = text;
  for (const { at, body } of edits.sort((a, b) => b.at - a.at)) {
    const before = out.slice(0, at);
    out = `${before}${before.endsWith('\n') || before === '' ? '' : '\n'}${body}${out.slice(at)}`;
  }
  return out;
}

function sameData(a: string, b: string): boolean {
  const read = (text: string): string => JSON.stringify(parseAllDocuments(text).map((d) => (d.errors.length > 0 ? null : d.toJS())));
  return read(a) === read(b);
}

/** Several documents back into one text, `---` between them as `yaml` writes it. */
function joinDocuments(docs: readonly Document[]): string {
  return docs.map((d, i) => {
    const text = d.toString({ lineWidth: 0, flowCollectionPadding: false });
    return i === 0 || text.startsWith('---') ? text : `---\n${text}`;
  }).join('');
}

/** Nothing written unless every file can be: the directory is made and checked first; each file is a temporary file renamed over. */
export async function writeImport(dir: string, displayDir: string, writes: readonly FileWrite[]): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    for (const w of writes) if (w.action === 'update') await access(path.join(dir, w.file), constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'permission denied' : (error as Error).message;
    throw new ImportFileError(`cannot write the policies to ${displayDir}: ${why}; import wrote nothing`);
  }
  const staged: { temp: string; target: string }[] = [];
  const folders = new Set(writes.map((w) => path.dirname(path.join(dir, w.file))));
  const stage = async (w: FileWrite): Promise<void> => {
    const target = path.join(dir, w.file);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.pgwarden-${process.pid}.tmp`);
    const mode = w.action === 'update' ? (await stat(target)).mode & 0o777 : 0o644;
    staged.push({ temp, target });
    await writeFile(temp, w.after, { mode });
  };
  try {
    for (const folder of folders) await mkdir(folder, { recursive: true });
    // Every file staged first (a few at a time: thousands of tables), then renamed into place.
    for (let i = 0; i < writes.length; i += WRITE_BATCH) await Promise.all(writes.slice(i, i + WRITE_BATCH).map(stage));
  } catch (error) {
    await Promise.all(staged.map((s) => rm(s.temp, { force: true })));
    throw new ImportFileError(`cannot write the policies to ${displayDir}: ${(error as Error).message}; import wrote nothing`);
  }
  for (let i = 0; i < staged.length; i += WRITE_BATCH) await Promise.all(staged.slice(i, i + WRITE_BATCH).map((s) => rename(s.temp, s.target)));
}

/** A unified diff of one file, for `--dry-run`. */
export function unifiedDiff(file: string, before: string, after: string): string {
  const a = before === '' ? [] : before.replace(/\n$/u, '').split('\n');
  const b = after.replace(/\n$/u, '').split('\n');
  const header = `--- ${before === '' ? '/dev/null' : `a/${file}`}\n+++ b/${file}\n`;
  const ops = lineOps(a, b);
  const out: string[] = [];
  const context = 3;
  let i = 0;
  while (i < ops.length) {
    if (ops[i]?.kind === ' ') {
      i += 1;
      continue;
    }
    const start = Math.max(0, i - context);
    let end = i;
    while (end < ops.length) {
      if (ops[end]?.kind !== ' ') {
        end += 1;
        continue;
      }
      let run = end;
      while (run < ops.length && ops[run]?.kind === ' ') run += 1;
      if (run - end > 2 * context || run === ops.length) {
        end = Math.min(ops.length, end + context);
        break;
      }
      end = run;
    }
    const hunk = ops.slice(start, end);
    const aStart = (ops[start]?.a ?? 0) + 1;
    const bStart = (ops[start]?.b ?? 0) + 1;
    const aLen = hunk.filter((o) => o.kind !== '+').length;
    const bLen = hunk.filter((o) => o.kind !== '-').length;
    out.push(`@@ -${aLen === 0 ? aStart - 1 : aStart},${aLen} +${bLen === 0 ? bStart - 1 : bStart},${bLen} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.text}`);
    i = end;
  }
  return `${header}${out.join('\n')}\n`;
}

interface LineOp {
  readonly kind: ' ' | '-' | '+';
  readonly text: string;
  /** Lines of each side before this one. */
  readonly a: number;
  readonly b: number;
}

/** Longest common subsequence of lines; policy files are small. */
function lineOps(a: readonly string[], b: readonly string[]): LineOp[] {
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const ops: LineOp[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', text: a[i] ?? '', a: i, b: j });
      i += 1;
      j += 1;
    } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      ops.push({ kind: '+', text: b[j] ?? '', a: i, b: j });
      j += 1;
    } else {
      ops.push({ kind: '-', text: a[i] ?? '', a: i, b: j });
      i += 1;
    }
  }
  return ops;
}


import { access, constants, cp, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseAllDocuments,
  Scalar,
  visit,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import { formatPolicyError } from '../policy/desired.ts';
import { loadPolicies } from '../policy/load.ts';
import type { IndexAdvice } from './advise.ts';

/**
 * `advise --write`: the advised indexes added to the policy files as a minimal diff. The `yaml`
 * Document API finds the right document (`table: schema.name`) and its `indexes:` list and renders
 * the new entries; they are spliced into the file's own text at the end of that list, so every other
 * byte — comments, blank lines, alignment, quoting — stays as it was. The result is then checked: it
 * must parse to exactly the old data plus the new entries, and the whole policy directory must still
 * load without errors. A file that cannot be edited that way (flow-style lists, anchors and aliases,
 * merge keys, no write permission) is left alone and the entries are printed to paste instead.
 */

export type PolicyChange =
  | { readonly kind: 'edit'; readonly table: string; readonly file: string; readonly path: string; readonly before: string; readonly after: string; readonly indexes: readonly string[]; readonly line: number; readonly added: string }
  | { readonly kind: 'create'; readonly table: string; readonly file: string; readonly path: string; readonly after: string; readonly indexes: readonly string[] }
  | { readonly kind: 'refused'; readonly file: string; readonly table: string; readonly reason: string; readonly snippet: string };

export interface PolicyTarget {
  /** The policies directory, absolute. */
  readonly dir: string;
  /** How the user wrote it, for messages (`policies`). */
  readonly displayDir: string;
}

/** The policy entry of one advised index, as plain data. */
function entry(a: IndexAdvice): Record<string, unknown> {
  return {
    name: a.name,
    columns: a.keys.map((k) => `${shortName(k.column)}${k.order === 'desc' ? ' desc' : ''}`),
    ...(a.include.length > 0 ? { include: [...a.include] } : {}),
    ...(a.where === undefined ? {} : { where: a.where }),
  };
}

/** A column in the short key syntax: bare when it reads back as itself, double-quoted otherwise. */
function shortName(column: string): string {
  const plain = /^[\p{L}_][\p{L}\p{M}\p{N}_$]*$/u.test(column) && !/^(asc|desc|nulls)$/i.test(column);
  return plain ? column : `"${column.replaceAll('"', '""')}"`;
}

function comment(a: IndexAdvice): string {
  const evidence = a.method === 'hypopg' ? 'planner cost with hypopg' : 'estimated from pg_stats';
  const statements = a.statements.length === 1 ? '1 statement' : `${a.statements.length} statements`;
  return ` pgwarden advise: ${statements}, ~${formatMs(a.netMs)} saved in the window net of writes (${evidence})`;
}

function formatMs(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${value.toFixed(value >= 10 ? 0 : 1)} ms`;
}

/** The new list entries as YAML lines at column 0: `- name: ...` with the keys in flow style, as policies are written. */
export function renderEntries(advice: readonly IndexAdvice[]): string {
  const doc = new Document(advice.map(entry));
  const seq = doc.contents as YAMLSeq;
  seq.items.forEach((item, i) => {
    const map = item as YAMLMap;
    for (const key of ['columns', 'include']) {
      const list = map.get(key, true);
      if (isSeq(list)) list.flow = true;
    }
    const where = map.get('where', true);
    if (where instanceof Scalar) where.type = 'QUOTE_DOUBLE';
    const a = advice[i];
    if (a) map.commentBefore = comment(a);
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `${pad}${line}`))
    .join('\n');
}

/** Which table a document is about, as the loader reads `table:` and `schema:`. */
function documentTable(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const record = data as Record<string, unknown>;
  const table = record['table'];
  const schema = record['schema'];
  if (typeof table !== 'string') return undefined;
  if (typeof schema === 'string') return `${schema}.${table}`;
  const parts = table.split('.');
  return parts.length === 1 ? `public.${table}` : parts.length === 2 ? table : undefined;
}

interface Located {
  readonly file: string;
  readonly text: string;
  readonly index: number;
}

async function locate(target: PolicyTarget, files: readonly string[], table: string): Promise<Located | undefined> {
  for (const file of files) {
    const text = await readFile(path.join(target.dir, file), 'utf8');
    const documents = parseAllDocuments(text);
    const index = documents.findIndex((d) => d.errors.length === 0 && documentTable(safeJs(d)) === table);
    if (index >= 0) return { file, text, index };
  }
  return undefined;
}

function safeJs(document: { toJS: (o?: { maxAliasCount: number }) => unknown }): unknown {
  try {
    return document.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
}

type Splice = { ok: true; text: string; line: number; added: string } | { ok: false; reason: string };

/** Inserts the entries at the end of the document's `indexes:` list (creating the key if needed). */
export function spliceEntries(text: string, documentIndex: number, advice: readonly IndexAdvice[]): Splice {
  const documents = parseAllDocuments(text);
  const document = documents[documentIndex];
  if (document === undefined || document.errors.length > 0) return { ok: false, reason: 'the document does not parse' };
  const contents = document.contents;
  if (!isMap(contents)) return { ok: false, reason: 'the document is not a mapping' };
  if (contents.flow) return { ok: false, reason: 'the document is a flow mapping ({...}); pgwarden edits block style only' };
  let unsafe: string | undefined;
  visit(document, {
    Node(_key, node) {
      if (isAlias(node)) unsafe = 'the document uses YAML aliases (*name)';
      else if ('anchor' in node && typeof node.anchor === 'string') unsafe = 'the document uses YAML anchors (&name)';
    },
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<') unsafe = 'the document uses a merge key (<<)';
    },
  });
  if (unsafe !== undefined) return { ok: false, reason: `${unsafe}; pgwarden does not rewrite those` };

  const block = renderEntries(advice);
  const pair = contents.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === 'indexes');
  const value = pair?.value;
  let insertAt: number;
  let body: string;
  let out: string;
  if (pair === undefined || value === null || value === undefined || (isScalar(value) && value.value === null)) {
    // No list yet: `indexes:` after the document's last line (or filling an empty `indexes:`).
    const keyCol = keyColumn(text, contents);
    if (pair !== undefined && isScalar(pair.key) && pair.key.range) {
      insertAt = lineEnd(text, pair.key.range[1]);
      body = indent(block, keyCol + 2);
      out = splice(text, insertAt, body);
    } else {
      insertAt = lineEnd(text, contents.range?.[1] ?? text.length);
      body = `${' '.repeat(keyCol)}indexes:\n${indent(block, keyCol + 2)}`;
      out = splice(text, insertAt, body);
    }
  } else if (isSeq(value) && value.flow && value.items.length === 0 && value.range) {
    // `indexes: []`: the empty list goes, the block list follows the key.
    const keyCol = keyColumn(text, contents);
    const lineStart = text.lastIndexOf('\n', value.range[0] - 1) + 1;
    const lineStop = lineEnd(text, value.range[1]);
    const alone = text.slice(lineStart, value.range[0]).trim() === '' && text.slice(value.range[1], lineStop).trim() === '';
    // `[]` on a line of its own goes with its line; after the key (`indexes: []`) only the brackets go.
    const head = alone ? text.slice(0, lineStart) : text.slice(0, value.range[0]).replace(/[ \t]+$/, '');
    const rest = alone ? text.slice(lineStop) : text.slice(value.range[1]);
    insertAt = lineEnd(head + rest, head.length);
    body = indent(block, keyCol + 2);
    out = splice(head + rest, insertAt, body);
  } else if (isSeq(value) && !value.flow) {
    const last = value.items[value.items.length - 1] as { range?: [number, number, number] } | undefined;
    const first = value.items[0] as { range?: [number, number, number] } | undefined;
    if (last?.range === undefined || first?.range === undefined) return { ok: false, reason: 'cannot find the end of the indexes list' };
    const dash = dashColumn(text, first.range[0]);
    if (dash === undefined) return { ok: false, reason: 'cannot find the indentation of the indexes list' };
    insertAt = lineEnd(text, last.range[1]);
    body = indent(block, dash);
    out = splice(text, insertAt, body);
  } else if (isSeq(value)) {
    return { ok: false, reason: 'its `indexes:` is a flow sequence ([...]); pgwarden adds to block-style lists only' };
  } else {
    return { ok: false, reason: '`indexes:` is not a list' };
  }

  const check = verify(text, out, documentIndex, advice);
  if (check !== undefined) return { ok: false, reason: check };
  const line = out.slice(0, insertAt).split('\n').length;
  return { ok: true, text: out, line, added: body };
}

function splice(text: string, at: number, body: string): string {
  const before = text.slice(0, at);
  const needsNewline = before.length > 0 && !before.endsWith('\n');
  return `${before}${needsNewline ? '\n' : ''}${body}${body.endsWith('\n') ? '' : '\n'}${text.slice(at)}`;
}

/** The offset just after the line holding `offset` (after its newline), or the end of the text. */
function lineEnd(text: string, offset: number): number {
  const back = Math.max(0, Math.min(offset, text.length));
  if (back > 0 && text[back - 1] === '\n') return back;
  const nl = text.indexOf('\n', back);
  return nl === -1 ? text.length : nl + 1;
}

/** The column of the `-` that starts the list item at `itemStart`. */
function dashColumn(text: string, itemStart: number): number | undefined {
  const lineStart = text.lastIndexOf('\n', itemStart - 1) + 1;
  const prefix = text.slice(lineStart, itemStart);
  const m = /^(\s*)-\s*$/.exec(prefix);
  return m ? (m[1] as string).length : undefined;
}

/** The column the document's top-level keys start at. */
function keyColumn(text: string, contents: YAMLMap): number {
  const first = contents.items[0];
  const start = first && isScalar(first.key) ? first.key.range?.[0] : undefined;
  if (start === undefined) return 0;
  return start - (text.lastIndexOf('\n', start - 1) + 1);
}

/** Parses both texts: every document as before, except the target's `indexes`, which gained the entries. */
function verify(before: string, after: string, documentIndex: number, advice: readonly IndexAdvice[]): string | undefined {
  const old = parseAllDocuments(before);
  const now = parseAllDocuments(after);
  if (now.some((d) => d.errors.length > 0)) return 'the edited file would not parse';
  if (old.length !== now.length) return 'the edit would change the number of documents';
  for (const [i, doc] of now.entries()) {
    const was = safeJs(old[i] as (typeof old)[number]);
    let expected = was;
    if (i === documentIndex) {
      const record = was as Record<string, unknown>;
      const list = Array.isArray(record['indexes']) ? (record['indexes'] as unknown[]) : [];
      expected = { ...record, indexes: [...list, ...advice.map(entry)] };
    }
    if (JSON.stringify(safeJs(doc)) !== JSON.stringify(expected)) {
      return i === documentIndex ? 'the edit would change more than the indexes list' : 'the edit would change another document';
    }
  }
  return undefined;
}

/** A file name for a table without a policy yet: `<table>.yaml`, else `<schema>.<table>.yaml`, else numbered. */
async function freeName(dir: string, schema: string, table: string, taken: ReadonlySet<string>): Promise<string> {
  const safe = (s: string): string => s.replace(/[^\p{L}\p{N}_.-]+/gu, '_');
  const candidates = [`${safe(table)}.yaml`, `${safe(schema)}.${safe(table)}.yaml`];
  for (let n = 2; n < 100; n += 1) candidates.push(`${safe(schema)}.${safe(table)}-${n}.yaml`);
  for (const name of candidates) {
    if (taken.has(name)) continue;
    const exists = await stat(path.join(dir, name)).then(() => true, () => false);
    if (!exists) return name;
  }
  throw new Error(`no free file name for ${schema}.${table}`);
}

function newDocument(schema: string, table: string, advice: readonly IndexAdvice[]): string {
  const name = /^[a-z_][a-z0-9_$]*$/.test(table) && !table.includes('.') ? table : undefined;
  const head = schema === 'public' && name !== undefined
    ? `table: ${name}\n`
    : new Document({ schema, table }).toString();
  return `# Indexes advised by \`pgwarden advise\`; review before merging.\n${head}indexes:\n${indent(renderEntries(advice), 2)}`;
}

/** What `--write` would do to each file, without writing anything. */
export async function planPolicyWrites(target: PolicyTarget, files: readonly string[], advice: readonly IndexAdvice[]): Promise<PolicyChange[]> {
  const byTable = new Map<string, IndexAdvice[]>();
  for (const a of advice) byTable.set(`${a.schema}.${a.table}`, [...(byTable.get(`${a.schema}.${a.table}`) ?? []), a]);
  const changes: PolicyChange[] = [];
  const texts = new Map<string, string>();
  const created = new Set<string>();
  for (const [table, list] of byTable) {
    const located = await locate(target, files, table);
    const first = list[0] as IndexAdvice;
    if (located === undefined) {
      const name = await freeName(target.dir, first.schema, first.table, created);
      created.add(name);
      changes.push({ kind: 'create', table, file: path.join(target.displayDir, name), path: path.join(target.dir, name), after: newDocument(first.schema, first.table, list), indexes: list.map((a) => a.name) });
      continue;
    }
    const full = path.join(target.dir, located.file);
    const current = texts.get(full) ?? located.text;
    const result = spliceEntries(current, located.index, list);
    const shown = path.join(target.displayDir, located.file);
    if (!result.ok) {
      changes.push({ kind: 'refused', file: shown, table, reason: result.reason, snippet: snippetFor(table, list) });
      continue;
    }
    texts.set(full, result.text);
    const previous = changes.findIndex((c) => c.kind === 'edit' && c.path === full);
    const edit: PolicyChange = { kind: 'edit', table, file: shown, path: full, before: located.text, after: result.text, indexes: list.map((a) => a.name), line: result.line, added: result.added };
    if (previous >= 0) {
      const p = changes[previous] as Extract<PolicyChange, { kind: 'edit' }>;
      changes[previous] = { ...edit, indexes: [...p.indexes, ...edit.indexes], added: `${p.added}${edit.added}` };
    } else {
      changes.push(edit);
    }
  }
  return changes;
}

export function snippetFor(table: string, advice: readonly IndexAdvice[]): string {
  return `# under \`indexes:\` of the \`table: ${table}\` policy document\n${renderEntries(advice)}`;
}

/**
 * Writes the planned edits: first into a copy of the policy directory, which must load without
 * errors; then each file by write-and-rename (atomic per file). A file that cannot be written becomes
 * a refusal with its snippet.
 */
export async function writePolicyChanges(target: PolicyTarget, changes: readonly PolicyChange[]): Promise<PolicyChange[]> {
  const writable = changes.filter((c) => c.kind !== 'refused');
  if (writable.length === 0) return [...changes];
  const scratch = await mkdtemp(path.join(tmpdir(), 'pgwarden-advise-'));
  try {
    await cp(target.dir, scratch, { recursive: true });
    for (const c of writable) await writeFile(path.join(scratch, path.relative(target.dir, c.path)), c.after);
    const { errors } = await loadPolicies(scratch, { displayDir: target.displayDir });
    if (errors.length > 0) {
      const reason = `the edited policies would not load: ${errors.map(formatPolicyError).join('; ')}`;
      return changes.map((c) => (c.kind === 'refused' ? c : refusal(c, reason)));
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const out: PolicyChange[] = [];
  for (const c of changes) {
    if (c.kind === 'refused') {
      out.push(c);
      continue;
    }
    try {
      if (c.kind === 'edit') await access(c.path, constants.W_OK);
      const temp = `${c.path}.pgwarden-${process.pid}.tmp`;
      const mode = c.kind === 'edit' ? (await stat(c.path)).mode & 0o777 : 0o644;
      await writeFile(temp, c.after, { mode });
      await rename(temp, c.path).catch(async (error: unknown) => {
        await rm(temp, { force: true });
        throw error;
      });
      out.push(c);
    } catch (error) {
      const code = (error as { code?: string }).code;
      const reason = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'the file cannot be written (permission denied)' : `cannot write the file: ${(error as Error).message}`;
      out.push(refusal(c, reason));
    }
  }
  return out;
}

function refusal(c: Exclude<PolicyChange, { kind: 'refused' }>, reason: string): PolicyChange {
  const added = c.kind === 'edit' ? c.added : c.after;
  return { kind: 'refused', file: c.file, table: c.table, reason, snippet: added };
}

/** The inserted lines as a unified-diff hunk, for the terminal. */
export function changeDiff(c: PolicyChange): string {
  if (c.kind === 'refused') return '';
  if (c.kind === 'create') return `--- /dev/null\n+++ ${c.file}\n${c.after.split('\n').filter((l, i, a) => i < a.length - 1 || l !== '').map((l) => `+${l}`).join('\n')}\n`;
  const added = c.added.split('\n').filter((l, i, a) => i < a.length - 1 || l !== '');
  return `--- ${c.file}\n+++ ${c.file}\n@@ -${c.line - 1},0 +${c.line},${added.length} @@\n${added.map((l) => `+${l}`).join('\n')}\n`;
}

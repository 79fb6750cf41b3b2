import type { StatementStats } from '../analysis/statement-stats.ts';

/**
 * `advise --workload FILE`: a captured workload as SQL text, for advice computed in CI without a
 * pg_stat_statements window. Statements end with `;`; comment lines right before a statement may say
 * how much it counts:
 *
 * ```sql
 * -- calls: 1200        how often it runs (in the period the file stands for); default 1
 * -- mean_ms: 3.5       its measured mean time; without it the time is estimated from its plan cost
 * SELECT * FROM events WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 50;
 * -- weight: 2.5        a relative weight, the same as calls (fractions allowed)
 * SELECT ...;
 * ```
 *
 * Parameters may be `$n` (as pg_stat_statements writes them) or constants. The file is split with
 * PostgreSQL's lexical rules (quotes, dollar quotes, comments); each statement is parsed on its own,
 * so one the parser rejects is listed with its reason and the others go on.
 */

export interface WorkloadFileStatement {
  readonly stats: StatementStats;
  /** false: no `-- mean_ms:`, the time is to be estimated from the plan cost. */
  readonly timed: boolean;
}

export class WorkloadFileError extends Error {}

const ANNOTATION = /^--\s*(calls|weight|mean_ms)\s*:\s*(.*?)\s*$/i;

export function readWorkloadFile(text: string, file: string): WorkloadFileStatement[] {
  const out: WorkloadFileStatement[] = [];
  for (const chunk of splitStatements(text)) {
    const notes: Record<string, number> = {};
    for (const note of chunk.comments) {
      const m = ANNOTATION.exec(note.text);
      if (m === null) continue;
      const name = (m[1] as string).toLowerCase();
      const value = Number(m[2]);
      if (m[2] === '' || !Number.isFinite(value) || value < 0 || (name === 'calls' && !Number.isInteger(value))) {
        const expected = name === 'calls' ? 'a whole number' : 'a number >= 0';
        throw new WorkloadFileError(`${file}:${note.line}:${note.column}: ${name} must be ${expected}, got "${m[2] ?? ''}"`);
      }
      notes[name === 'weight' ? 'calls' : name] = value;
    }
    const calls = notes['calls'] ?? 1;
    if (calls === 0) continue;
    const meanMs = notes['mean_ms'];
    const key = `${file}:${chunk.line}`;
    out.push({
      timed: meanMs !== undefined,
      stats: {
        key,
        queryId: key,
        user: '',
        query: chunk.sql,
        calls,
        totalMs: (meanMs ?? 0) * calls,
        meanMs: meanMs ?? 0,
        rows: 0,
        rowsPerCall: 0,
        sharedHit: 0,
        sharedRead: 0,
        tempWritten: 0,
        planMs: 0,
        maxMs: meanMs ?? 0,
        minMs: meanMs ?? 0,
        stddevMs: 0,
        share: 0,
        cacheHitRatio: null,
      },
    });
  }
  return out;
}

interface Chunk {
  readonly sql: string;
  /** 1-based line of the statement's first token. */
  readonly line: number;
  /** The `--` comment lines before the statement's first token. */
  readonly comments: readonly { text: string; line: number; column: number }[];
}

/** Splits at top-level semicolons, as psql does: not inside quotes, dollar quotes or comments. */
export function splitStatements(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let line = 1;
  let lineStart = 0;
  let start = -1;
  let startLine = 0;
  let comments: { text: string; line: number; column: number }[] = [];
  let depth = 0;
  const flush = (end: number): void => {
    if (start >= 0) chunks.push({ sql: text.slice(start, end).trim(), line: startLine, comments });
    start = -1;
    comments = [];
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if (c === '\n') {
      line += 1;
      lineStart = i + 1;
      i += 1;
      continue;
    }
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      if (start < 0) comments.push({ text: text.slice(i, stop), line, column: i - lineStart + 1 });
      i = stop;
      continue;
    }
    if (c === '/' && next === '*') {
      // Block comments nest in PostgreSQL.
      let nest = 1;
      i += 2;
      while (i < text.length && nest > 0) {
        if (text[i] === '\n') {
          line += 1;
          lineStart = i + 1;
        }
        if (text.startsWith('/*', i)) {
          nest += 1;
          i += 2;
        } else if (text.startsWith('*/', i)) {
          nest -= 1;
          i += 2;
        } else i += 1;
      }
      continue;
    }
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (start < 0) {
      start = i;
      startLine = line;
    }
    if (c === ';' && depth === 0) {
      flush(i);
      i += 1;
      continue;
    }
    if (c === '(') depth += 1;
    if (c === ')') depth = Math.max(0, depth - 1);
    if (c === "'" || c === '"') {
      // A doubled quote is an escaped quote; E'' strings also escape with a backslash.
      const escapes = c === "'" && /[eE]/.test(text[i - 1] ?? '') && !/\w/.test(text[i - 2] ?? '');
      i += 1;
      while (i < text.length) {
        const d = text[i];
        if (d === '\n') {
          line += 1;
          lineStart = i + 1;
        }
        if (escapes && d === '\\') {
          i += 2;
          continue;
        }
        if (d === c) {
          if (text[i + 1] === c) {
            i += 2;
            continue;
          }
          break;
        }
        i += 1;
      }
      i += 1;
      continue;
    }
    if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (tag !== null && !/\w/.test(text[i - 1] ?? '')) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        const stop = close === -1 ? text.length : close + tag[0].length;
        for (let k = i; k < stop; k += 1) {
          if (text[k] === '\n') {
            line += 1;
            lineStart = k + 1;
          }
        }
        i = stop;
        continue;
      }
    }
    i += 1;
  }
  flush(text.length);
  return chunks.filter((c) => c.sql.length > 0);
}

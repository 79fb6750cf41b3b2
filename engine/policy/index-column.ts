import type { NullsOrder, SortOrder } from './desired.ts';

/**
 * The short form of an index key, as written in a policy: `<column> [asc|desc] [nulls first|last]`.
 * `order` and `nulls` are absent when the text does not say them, so that the loader can tell
 * "written" from "defaulted" (non-btree methods reject any explicit ordering).
 */
export interface IndexColumn {
  readonly column: string;
  readonly order?: SortOrder;
  readonly nulls?: NullsOrder;
}

export type IndexColumnParse =
  | { readonly ok: true; readonly value: IndexColumn }
  | { readonly ok: false; readonly message: string };

export const indexColumnSyntax = '<column> [asc|desc] [nulls first|last]';

type Token = { readonly quoted: boolean; readonly text: string; readonly raw: string };

/**
 * Parses the short form. A column is a plain identifier or a double-quoted one with `""` escaping;
 * either way its case is kept exactly as written, because pgwarden treats names as exact (it never
 * folds to lower case as PostgreSQL does for unquoted SQL). Keywords are case-insensitive.
 *
 * @example parseIndexColumn('created_at desc') // => { ok: true, value: { column: 'created_at', order: 'desc' } }
 * @example parseIndexColumn('"Created ""At""" nulls first') // => column 'Created "At"', nulls 'first'
 */
export function parseIndexColumn(text: string): IndexColumnParse {
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return fail(tokens);
  const [first, ...rest] = tokens;
  if (first === undefined) return fail('is empty');

  const column = columnName(first);
  if (!column.ok) return column;

  let order: SortOrder | undefined;
  let nulls: NullsOrder | undefined;
  for (let i = 0; i < rest.length; i += 1) {
    const token = rest[i] as Token;
    const word = token.quoted ? undefined : token.text.toLowerCase();
    if (word === 'asc' || word === 'desc') {
      if (order !== undefined) return fail(`gives the sort order twice ("${order}" and ${JSON.stringify(token.text)})`);
      if (nulls !== undefined) {
        return fail(`has ${JSON.stringify(token.text)} after "nulls ${nulls}"; the sort order comes first`);
      }
      order = word;
    } else if (word === 'nulls') {
      if (nulls !== undefined) return fail('gives "nulls" twice');
      const next = rest[i + 1];
      const which = next === undefined || next.quoted ? undefined : next.text.toLowerCase();
      if (which !== 'first' && which !== 'last') return fail('has "nulls" without first or last after it');
      nulls = which;
      i += 1;
    } else {
      return fail(`has unexpected ${show(token)} after ${show(tokens[i] as Token)}`);
    }
  }

  const value = { column: column.value, ...(order === undefined ? {} : { order }), ...(nulls === undefined ? {} : { nulls }) };
  return { ok: true, value };
}

/** A token as the user wrote it, for messages. */
function show(token: Token): string {
  return token.quoted ? token.raw : `"${token.raw}"`;
}

function fail(message: string): IndexColumnParse {
  return { ok: false, message };
}

// PostgreSQL's unquoted identifier: a letter (any script) or underscore, then letters, digits, `_`, `$`.
const plainIdentifier = /^[\p{L}_][\p{L}\p{M}\p{N}_$]*$/u;

function columnName(token: Token): { ok: true; value: string } | { ok: false; message: string } {
  if (token.quoted) {
    // PostgreSQL rejects "" outright: "zero-length delimited identifier".
    return token.text === '' ? { ok: false, message: 'has an empty quoted name ""' } : { ok: true, value: token.text };
  }
  const word = token.text.toLowerCase();
  if (word === 'asc' || word === 'desc' || word === 'nulls') {
    return { ok: false, message: `starts with ${JSON.stringify(token.text)} instead of a column name` };
  }
  if (!plainIdentifier.test(token.text)) {
    return { ok: false, message: `has ${JSON.stringify(token.text)}, which is not a plain column name` };
  }
  return { ok: true, value: token.text };
}

/** Splits on whitespace outside double quotes; returns a message for an unterminated quote. */
function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i] as string;
    if (/\s/u.test(char)) {
      i += 1;
    } else if (char === '"') {
      const quoted = readQuoted(text, i + 1);
      if (quoted === undefined) return 'has an unterminated quoted name';
      tokens.push({ quoted: true, text: quoted.text, raw: text.slice(i, quoted.end) });
      i = quoted.end;
    } else {
      let end = i;
      while (end < text.length && text[end] !== '"' && !/\s/u.test(text[end] as string)) end += 1;
      tokens.push({ quoted: false, text: text.slice(i, end), raw: text.slice(i, end) });
      i = end;
    }
  }
  return tokens;
}

function readQuoted(text: string, start: number): { text: string; end: number } | undefined {
  let value = '';
  let i = start;
  while (i < text.length) {
    if (text[i] !== '"') {
      value += text[i];
      i += 1;
    } else if (text[i + 1] === '"') {
      value += '"';
      i += 2;
    } else {
      return { text: value, end: i + 1 };
    }
  }
  return undefined;
}

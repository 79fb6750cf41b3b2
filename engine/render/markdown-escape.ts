/**
 * Names and policy strings are the user's: any of them may hold a backtick, a `|`, a `<`, `-->` or a
 * line break. Each function here makes one such string safe for one Markdown context (GitHub-flavoured
 * Markdown, as a pull-request comment renders it), so that it stays one piece of inline text and can
 * neither end the table row, code span, fenced block or HTML element around it nor start a new block.
 * Ordinary names (letters, digits, `_`, `.`) come out unchanged.
 */

/** Line breaks end a table row and may start a new block (a heading, a fence): one line only. */
function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, ' ');
}

/**
 * Inline text: backslash-escapes what could start code, emphasis, a link, an HTML tag or comment
 * (`<`), or close one (`>` of `-->`), and a leading character that would make a heading or a list.
 * `_` and `~` are left alone: they can only strike through or emphasise, never change the structure,
 * and `_` is in nearly every name (`~` in every "~2,000 rows").
 */
export function markdownText(text: string): string {
  return oneLine(text).replace(/[\\`*[\]<>]/g, '\\$&').replace(/^([#+-]|\d+[.)])/, '\\$1');
}

/** A table cell: inline text whose `|` does not split the cell. */
export function markdownCell(text: string): string {
  return markdownText(text).replace(/\|/g, '\\|');
}

function longestBacktickRun(text: string): number {
  return Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
}

/**
 * A code span: delimited by one backtick more than the longest run inside, padded with a space when
 * the text starts or ends with a backtick (CommonMark strips exactly one such space on each side).
 */
export function markdownCode(text: string): string {
  const body = oneLine(text);
  const fence = '`'.repeat(longestBacktickRun(body) + 1);
  const pad = /^[` ]|[` ]$/.test(body) ? ' ' : '';
  return `${fence}${pad}${body}${pad}${fence}`;
}

/**
 * A code span in a table cell. GFM splits rows on `|` before it parses code spans and reads `\|` as a
 * pipe even inside one, so the pipe is escaped here and shows as itself.
 */
export function markdownCellCode(text: string): string {
  return markdownCode(text.replace(/\|/g, '\\|'));
}

/** A fence for a code block holding `lines`: longer than any backtick run in them, at least three. */
export function codeFence(lines: readonly string[]): string {
  return '`'.repeat(Math.max(3, ...lines.map((l) => longestBacktickRun(l) + 1)));
}

/** A line of text inside a fenced block: one line, so a SQL comment stays a comment. */
export function codeLine(text: string): string {
  return oneLine(text);
}

/**
 * Names for advised indexes, PostgreSQL's way (`events_tenant_id_created_at_idx`), cut to 63 bytes on
 * a character boundary and made unique against every relation of the schema and every name taken in
 * the policies: an index shares its schema's namespace with tables, views and other indexes.
 */
const MAX_BYTES = 63;

export function indexName(table: string, columns: readonly string[], partial: boolean, taken: ReadonlySet<string>): string {
  const base = [table, ...columns.map((c) => c.replace(/[^\p{L}\p{N}_]+/gu, '_'))].join('_');
  const suffix = partial ? '_partial_idx' : '_idx';
  for (let n = 0; ; n += 1) {
    const tail = n === 0 ? suffix : `${suffix}${n}`;
    const name = `${cut(base, MAX_BYTES - Buffer.byteLength(tail, 'utf8'))}${tail}`;
    if (!taken.has(name)) return name;
  }
}

function cut(text: string, bytes: number): string {
  let out = '';
  for (const char of text) {
    if (Buffer.byteLength(out + char, 'utf8') > bytes) break;
    out += char;
  }
  return out;
}

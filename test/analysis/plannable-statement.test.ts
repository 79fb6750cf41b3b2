import { describe, expect, it } from 'vitest';
import { plannableStatement, type ColumnTypes } from '../../engine/analysis/plannable-statement.ts';
import { parseStatement } from '../../engine/analysis/sql-statement.ts';

// Texts as pg_stat_statements (PostgreSQL 15) normalised them; the column types of a TPC-H-like lineitem.
const LINEITEM: Record<string, string> = {
  l_orderkey: 'integer',
  l_shipdate: 'date',
  l_discount: 'numeric',
  l_extendedprice: 'numeric',
  l_quantity: 'numeric',
  l_ts: 'timestamp with time zone',
  l_comment: 'character varying',
};
const types: ColumnTypes = (column) => LINEITEM[column];

async function plannable(sql: string): Promise<{ text: string; repairs: readonly string[]; parameters: number }> {
  const parsed = await parseStatement(sql);
  if (!parsed.ok) throw new Error(parsed.message);
  const result = await plannableStatement(parsed, types);
  return { text: result.statement.text, repairs: result.repairs, parameters: result.statement.parameterCount };
}

describe('normalised statements rewritten so the server plans them as it planned the original', () => {
  it("restores extract's field as a keyword and types the parameters of arithmetic in a BETWEEN from its subject", async () => {
    const r = await plannable('select extract($1 from l_shipdate) as y, sum(l_extendedprice) from lineitem where l_discount between $2 - $3 and $4 + $5 group by 1');
    expect(r.text).toBe(
      'select extract(year from l_shipdate) as y, sum(l_extendedprice) from lineitem where l_discount between CAST($1 AS numeric) - CAST($2 AS numeric) and CAST($3 AS numeric) + CAST($4 AS numeric) group by 1',
    );
    expect(r.parameters).toBe(4);
    expect(r.repairs).toEqual(expect.arrayContaining(["extract's field $1 read as year", 'parameters renumbered $1..$4', '$1 typed numeric']));
  });

  it('types the bounds of a BETWEEN on a date as a date moved by whole days', async () => {
    expect((await plannable('select * from lineitem where l_shipdate between $1 - $2 and $3')).text).toBe(
      'select * from lineitem where l_shipdate between CAST($1 AS date) - CAST($2 AS integer) and $3',
    );
  });

  it('moves a date by whole days and a timestamp by an interval', async () => {
    expect((await plannable('select * from lineitem where l_shipdate < $1 + $2')).text).toBe(
      'select * from lineitem where l_shipdate < CAST($1 AS date) + CAST($2 AS integer)',
    );
    expect((await plannable('select * from lineitem where l_ts > $1 - $2')).text).toBe(
      'select * from lineitem where l_ts > CAST($1 AS timestamp with time zone) - CAST($2 AS interval)',
    );
    expect((await plannable('select * from lineitem where l_shipdate > current_date - $1')).text).toBe(
      'select * from lineitem where l_shipdate > current_date - CAST($1 AS integer)',
    );
  });

  it('leaves alone what the server infers by itself', async () => {
    for (const sql of [
      'select l_quantity * $1 - $2 from lineitem where l_comment = $3',
      'select sum(l_extendedprice * ($1 - l_discount)) from lineitem where l_orderkey in ($2, $3) limit $4',
      'select substring(l_comment from $1 for $2) from lineitem',
    ]) {
      const r = await plannable(sql);
      expect(r.text).toBe(sql);
      expect(r.repairs).toEqual([]);
    }
  });

  it('gives a repeated GROUP BY expression the parameters of the output column it repeats', async () => {
    const r = await plannable('select date_trunc($1, l_ts), count(*) from lineitem where l_ts > $2 group by date_trunc($3, l_ts) order by date_trunc($4, l_ts)');
    expect(r.text).toBe('select date_trunc($1, l_ts), count(*) from lineitem where l_ts > $2 group by date_trunc($1, l_ts) order by date_trunc($1, l_ts)');
    expect(r.parameters).toBe(2);
  });

  it('keeps the typed-literal repair and types a unary minus', async () => {
    const r = await plannable('select * from lineitem where l_shipdate >= date $1 and l_shipdate < date $2 + interval $3 year and l_quantity > - $4');
    expect(r.text).toBe(
      'select * from lineitem where l_shipdate >= CAST($1 AS date) and l_shipdate < CAST($2 AS date) + CAST($3 AS interval year) and l_quantity > - CAST($4 AS numeric)',
    );
  });
});

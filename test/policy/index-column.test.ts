import { describe, expect, it } from 'vitest';
import { parseIndexColumn } from '../../engine/policy/index-column.ts';

describe('parseIndexColumn', () => {
  it('reads a bare column name with no ordering', () => {
    expect(parseIndexColumn('tenant_id')).toEqual({ ok: true, value: { column: 'tenant_id' } });
  });

  it('reads the sort order and the nulls position', () => {
    expect(parseIndexColumn('created_at desc nulls last')).toEqual({
      ok: true,
      value: { column: 'created_at', order: 'desc', nulls: 'last' },
    });
  });

  it('reads nulls without a sort order', () => {
    expect(parseIndexColumn('score nulls first')).toEqual({ ok: true, value: { column: 'score', nulls: 'first' } });
  });

  it('accepts keywords in any case but keeps the column name exactly as written', () => {
    expect(parseIndexColumn('CreatedAt DESC NULLS FIRST')).toEqual({
      ok: true,
      value: { column: 'CreatedAt', order: 'desc', nulls: 'first' },
    });
  });

  it('accepts unicode letters in a plain name', () => {
    expect(parseIndexColumn('größe asc')).toEqual({ ok: true, value: { column: 'größe', order: 'asc' } });
  });

  it('reads a double-quoted name with doubled quotes as one name', () => {
    expect(parseIndexColumn('"Created ""At"" time" desc')).toEqual({
      ok: true,
      value: { column: 'Created "At" time', order: 'desc' },
    });
  });

  it('keeps an injection attempt inside quotes as a plain name', () => {
    expect(parseIndexColumn('"x""; DROP TABLE y; --"')).toEqual({ ok: true, value: { column: 'x"; DROP TABLE y; --' } });
  });

  it('rejects a sort order given twice', () => {
    expect(parseIndexColumn('tenant_id desc desc')).toEqual({
      ok: false,
      message: 'gives the sort order twice ("desc" and "desc")',
    });
  });

  it('rejects an unterminated quoted name', () => {
    expect(parseIndexColumn('"tenant_id desc')).toEqual({ ok: false, message: 'has an unterminated quoted name' });
  });

  it('rejects an empty quoted name, as PostgreSQL does', () => {
    expect(parseIndexColumn('"" desc')).toEqual({ ok: false, message: 'has an empty quoted name ""' });
  });

  it('rejects nulls without first or last', () => {
    expect(parseIndexColumn('a nulls')).toEqual({ ok: false, message: 'has "nulls" without first or last after it' });
  });

  it('rejects a sort order after the nulls position', () => {
    expect(parseIndexColumn('a nulls first desc')).toEqual({
      ok: false,
      message: 'has "desc" after "nulls first"; the sort order comes first',
    });
  });

  it('rejects an expression written as a column', () => {
    expect(parseIndexColumn('lower(email)')).toEqual({
      ok: false,
      message: 'has "lower(email)", which is not a plain column name',
    });
  });

  it('rejects a missing column name', () => {
    expect(parseIndexColumn('desc')).toEqual({ ok: false, message: 'starts with "desc" instead of a column name' });
  });

  it('rejects an unquoted name with spaces', () => {
    expect(parseIndexColumn('created at')).toEqual({ ok: false, message: 'has unexpected "at" after "created"' });
  });

  it('rejects an empty string', () => {
    expect(parseIndexColumn('   ')).toEqual({ ok: false, message: 'is empty' });
  });
});

import { describe, expect, it } from 'vitest';
import { coveredBy } from '../../engine/advisor/advise.ts';
import { candidateId, type CandidateKey, type IndexCandidate } from '../../engine/advisor/index-candidate.ts';

function candidate(keys: readonly string[], include: readonly string[] = [], where?: string): IndexCandidate {
  const shape = {
    schema: 'public',
    table: 'events',
    keys: keys.map((column): CandidateKey => ({ column, order: 'asc' })),
    include,
    ...(where === undefined ? {} : { where }),
  };
  return { ...shape, id: candidateId(shape), sources: [] };
}

function index(columns: readonly string[], include: readonly string[] = [], predicate: string | null = null) {
  return { columns, desc: columns.map(() => false), include, predicate };
}

describe('a candidate an existing or declared index already covers', () => {
  it('a prefix of an index, its INCLUDE columns stored there, is covered', () => {
    expect(coveredBy(candidate(['tenant_id'], ['kind']), [index(['tenant_id', 'created_at'], ['kind'])], [])).toBe(true);
  });

  it('a prefix of an index with INCLUDE columns that index does not store is a different index', () => {
    expect(coveredBy(candidate(['tenant_id'], ['status']), [index(['tenant_id', 'created_at'])], [])).toBe(false);
  });

  it('the same keys with more INCLUDE columns is not a new index', () => {
    expect(coveredBy(candidate(['tenant_id', 'created_at'], ['kind', 'status']), [index(['tenant_id', 'created_at'])], [])).toBe(true);
    expect(coveredBy(candidate(['tenant_id', 'created_at'], ['status']), [], [index(['tenant_id', 'created_at'], ['kind'])])).toBe(true);
  });

  it('a partial index covers only a candidate with the same predicate', () => {
    const partial = index(['owner'], [], "(status <> 'closed'::text)");
    expect(coveredBy(candidate(['owner']), [partial], [])).toBe(false);
    expect(coveredBy(candidate(['owner'], ['id'], "status <> 'closed'"), [partial], [])).toBe(true);
  });
});

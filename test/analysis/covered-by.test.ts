import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coveredBy, indexesByTable, readPlainKeys, type KeyShape } from '../../engine/advisor/advise.ts';
import { candidateId, type CandidateKey, type IndexCandidate } from '../../engine/advisor/index-candidate.ts';
import { catalogSession, introspect } from '../../engine/catalog/introspect.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

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

function index(columns: readonly string[], include: readonly string[] = [], predicate: string | null = null, plain = columns.map(() => true)): KeyShape {
  return { columns, desc: columns.map(() => false), plain, include, predicate };
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

  it('a key of another operator class or collation does not cover the column: it sorts differently', () => {
    const patternOps = index(['name', 'id'], [], null, [false, true]);
    expect(coveredBy(candidate(['name']), [patternOps], [])).toBe(false);
    expect(coveredBy(candidate(['name', 'id']), [patternOps], [])).toBe(false);
  });

  it('a special key past the candidate\'s keys does not matter: only the shared prefix is searched', () => {
    expect(coveredBy(candidate(['tenant_id'], ['name']), [index(['tenant_id', 'name'], [], null, [true, false])], [])).toBe(true);
  });
});

describe('which keys of the live indexes are plain', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await useTestDatabase();
    await db.pool.query(`
      CREATE TABLE people (id int, name text, code varchar(20), label text COLLATE "C");
      CREATE INDEX people_name_idx ON people (name) INCLUDE (id);
      CREATE INDEX people_name_pattern_idx ON people (name text_pattern_ops, id);
      CREATE INDEX people_name_c_idx ON people (name COLLATE "C");
      CREATE INDEX people_code_idx ON people (code);
      CREATE INDEX people_code_pattern_idx ON people (code varchar_pattern_ops);
      CREATE INDEX people_label_idx ON people (label);
      CREATE INDEX people_lower_idx ON people (lower(name));`);
  });
  afterAll(async () => {
    await db.close();
  });

  async function shapes(): Promise<Map<string, KeyShape>> {
    const client = await db.pool.connect();
    try {
      const catalog = await introspect(catalogSession(client), [{ schema: 'public', name: 'people' }]);
      const byTable = indexesByTable(catalog, await readPlainKeys(client, catalog));
      const names = catalog.indexes.map((i) => i.name);
      return new Map((byTable.get('public.people') ?? []).map((shape, n) => [names[n] ?? '', shape]));
    } finally {
      client.release();
    }
  }

  it('the default operator class and the column\'s own collation are plain; pattern_ops, another COLLATE and expressions are not', async () => {
    const plain = new Map([...(await shapes())].map(([name, shape]) => [name, shape.plain]));
    expect(Object.fromEntries(plain)).toEqual({
      people_name_idx: [true],
      people_name_pattern_idx: [false, true],
      people_name_c_idx: [false],
      people_code_idx: [true],
      people_code_pattern_idx: [false],
      people_label_idx: [true],
      people_lower_idx: [false],
    });
  });

  it('so a text_pattern_ops or COLLATE "C" index on name leaves a candidate on name uncovered, the ordinary one covers it', async () => {
    const live = await shapes();
    const on = (name: string): KeyShape[] => [live.get(name) as KeyShape];
    expect(coveredBy(candidate(['name']), on('people_name_pattern_idx'), [])).toBe(false);
    expect(coveredBy(candidate(['name']), on('people_name_c_idx'), [])).toBe(false);
    expect(coveredBy(candidate(['name']), on('people_name_idx'), [])).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { createStatementClassifier } from '../../engine/routing/statement-classifier.ts';
import { statementFacts } from '../../engine/routing/statement-facts.ts';
import { buildKnowledge, decideRoute, emptyKnowledge, type RouteDecision } from '../../engine/routing/statement-route.ts';

/** What the primary's catalog would say: count/lower are read-only, audit() writes, public.f is STABLE. */
const knowledge = buildKnowledge(
  1,
  [
    { schema: 'pg_catalog', name: 'count', read_only: true },
    { schema: 'pg_catalog', name: 'lower', read_only: true },
    { schema: 'pg_catalog', name: 'now', read_only: true },
    { schema: 'pg_catalog', name: 'extract', read_only: true },
    { schema: 'pg_catalog', name: 'generate_series', read_only: true },
    { schema: 'pg_catalog', name: 'nextval', read_only: false },
    { schema: 'public', name: 'audit', read_only: false },
    { schema: 'public', name: 'f', read_only: true },
    // The same name read-only in one schema, volatile in another: unqualified, it is not known to be safe.
    { schema: 'public', name: 'touch', read_only: true },
    { schema: 'app', name: 'touch', read_only: false },
  ],
  [
    { schema: 'public', name: 'scratch' },
    { schema: 'public', name: 'ids_seq' },
  ],
);

async function routeOf(text: string): Promise<RouteDecision> {
  return decideRoute(await statementFacts(text), knowledge);
}

async function target(text: string): Promise<'replica' | 'primary'> {
  return (await routeOf(text)).target;
}

describe('statement classification with the PostgreSQL parser', () => {
  it.each([
    'SELECT * FROM events WHERE tenant_id = $1',
    'WITH recent AS (SELECT * FROM events ORDER BY created_at DESC LIMIT 50) SELECT count(*) FROM recent',
    'VALUES (1, 2), (3, 4)',
    'SHOW work_mem',
    'TABLE events',
    'SELECT lower(email), extract(year FROM now()) FROM users',
    'SELECT * FROM generate_series(1, 10) g',
    'SELECT public.f(1)',
    'SELECT 1; SELECT 2',
    'EXPLAIN ANALYZE SELECT * FROM events',
    '(SELECT 1) UNION ALL (SELECT 2)',
    'SELECT random(), clock_timestamp(), pg_is_in_recovery()',
  ])('sends a read to the replica: %s', async (text) => {
    expect(await target(text)).toBe('replica');
  });

  it.each([
    ['INSERT INTO events (id) VALUES ($1)', 'INSERT'],
    ['UPDATE deployments SET status = $1 WHERE id = $2', 'UPDATE'],
    ['DELETE FROM events WHERE id = 1', 'DELETE'],
    ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', 'MERGE'],
    ['SELECT * FROM accounts WHERE id = 1 FOR UPDATE', 'FOR UPDATE'],
    ['SELECT * FROM accounts FOR KEY SHARE', 'FOR KEY SHARE'],
    ['SELECT * FROM (SELECT * FROM accounts FOR SHARE) a', 'FOR SHARE'],
    ['WITH gone AS (DELETE FROM events WHERE id < 10 RETURNING id) SELECT count(*) FROM gone', 'data-modifying WITH (DELETE)'],
    ['SELECT * INTO archive FROM events', 'SELECT INTO'],
    ['EXPLAIN ANALYZE UPDATE events SET kind = kind', 'EXPLAIN of UPDATE'],
    ['BEGIN', 'transaction control'],
    ['SET statement_timeout = 0', 'SET'],
    ['CREATE TABLE t (id int)', 'CREATE'],
    ['SELECT 1; INSERT INTO t VALUES (1)', 'INSERT'],
    ['LISTEN jobs', 'LISTEN'],
  ])('sends a write or a lock to the primary: %s', async (text, why) => {
    const decision = await routeOf(text);
    expect(decision).toMatchObject({ target: 'primary', reason: 'write' });
    expect(decision.target === 'primary' ? decision.detail : '').toContain(why);
  });

  it.each([
    ["SELECT nextval('ids_seq')", 'nextval'],
    ['SELECT audit($1)', 'audit'],
    ['SELECT public.audit($1)', 'public.audit'],
    ['SELECT touch(1)', 'touch'],
    ['SELECT pg_advisory_lock(42)', 'pg_advisory_lock'],
    ["SELECT set_config('app.user', '1', false)", 'set_config'],
    ['SELECT unknown_function()', 'unknown_function'],
    ['SELECT * FROM events WHERE id IN (SELECT audit(id) FROM t)', 'audit'],
  ])('sends a SELECT calling a function not known to be read-only to the primary: %s', async (text, fn) => {
    const decision = await routeOf(text);
    expect(decision).toMatchObject({ target: 'primary', reason: 'function' });
    expect(decision.target === 'primary' ? decision.detail : '').toContain(`${fn}()`);
  });

  it('sends reads of temporary and unlogged tables and of sequences to the primary', async () => {
    expect(await routeOf('SELECT * FROM scratch')).toMatchObject({ target: 'primary', reason: 'relation' });
    expect(await routeOf('SELECT last_value FROM public.ids_seq')).toMatchObject({ target: 'primary', reason: 'relation' });
    expect(await routeOf('SELECT * FROM pg_temp.mine')).toMatchObject({ target: 'primary', reason: 'relation' });
  });

  it('sends what does not parse, and an empty statement, to the primary', async () => {
    expect(await routeOf('SELEC * FROM events')).toMatchObject({ target: 'primary', reason: 'unparseable' });
    expect(await routeOf('-- nothing but a comment')).toMatchObject({ target: 'primary', reason: 'write' });
  });

  it('keeps every function call on the primary until the catalog is known, except clocks and randomness', async () => {
    expect(decideRoute(await statementFacts('SELECT count(*) FROM events'), emptyKnowledge)).toMatchObject({ target: 'primary', reason: 'function' });
    expect(decideRoute(await statementFacts('SELECT now(), random()'), emptyKnowledge)).toMatchObject({ target: 'primary' });
    expect(decideRoute(await statementFacts('SELECT random()'), emptyKnowledge)).toEqual({ target: 'replica' });
  });
});

describe('the classifier cache', () => {
  it('parses a text once and answers again synchronously', async () => {
    const classifier = createStatementClassifier();
    classifier.setKnowledge(knowledge);

    const first = classifier.route('SELECT count(*) FROM events');
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toEqual({ target: 'replica' });
    expect(classifier.route('SELECT count(*) FROM events')).toEqual({ target: 'replica' });
    expect(classifier.stats()).toMatchObject({ parses: 1, hits: 1, cached: 1 });
  });

  it('re-derives cached decisions when the catalog knowledge changes, without parsing again', async () => {
    const classifier = createStatementClassifier();
    await classifier.route('SELECT count(*) FROM events');
    expect(classifier.route('SELECT count(*) FROM events')).toMatchObject({ target: 'primary', reason: 'function' });

    classifier.setKnowledge(knowledge);

    expect(classifier.route('SELECT count(*) FROM events')).toEqual({ target: 'replica' });
    expect(classifier.stats().parses).toBe(1);
  });

  it('remembers a text a standby refused as the primary’s', async () => {
    const classifier = createStatementClassifier();
    classifier.setKnowledge(knowledge);
    await classifier.route('SELECT * FROM events');

    classifier.learnPrimary('SELECT * FROM events', 'cannot access temporary or unlogged relations during recovery');

    expect(classifier.route('SELECT * FROM events')).toMatchObject({ target: 'primary', reason: 'learned' });
  });

  it('stays bounded: two generations of maxEntries', async () => {
    const classifier = createStatementClassifier({ maxEntries: 10 });
    for (let i = 0; i < 35; i += 1) await classifier.route(`SELECT ${i}`);

    expect(classifier.stats().cached).toBeLessThanOrEqual(20);
  });
});

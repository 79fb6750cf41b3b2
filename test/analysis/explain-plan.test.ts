import { describe, expect, it } from 'vitest';
import { describeAccess, ExplainFormatError, nodeLabel, readExplain, walkPlan } from '../../engine/analysis/explain-plan.ts';

// Shaped as PostgreSQL 16 prints EXPLAIN (ANALYZE, VERBOSE, BUFFERS, FORMAT JSON), trimmed; one node type
// no release has (what a newer server or a custom scan provider could print) sits in the middle.
const plan = [
  {
    Plan: {
      'Node Type': 'Limit',
      'Parallel Aware': false,
      'Startup Cost': 1.5,
      'Total Cost': 99.25,
      'Plan Rows': 50,
      'Plan Width': 8,
      'Actual Startup Time': 0.05,
      'Actual Total Time': 1.2,
      'Actual Rows': 50,
      'Actual Loops': 1,
      'Shared Hit Blocks': 12,
      'Shared Read Blocks': 3,
      Plans: [
        {
          'Node Type': 'Frobnicate Scan',
          'Parent Relationship': 'Outer',
          'Startup Cost': 1.5,
          'Total Cost': 90,
          'Plan Rows': 100,
          'Plan Width': 8,
          'Actual Loops': 1,
          'Actual Rows': 50,
          'Frobnication Level': 11,
          Plans: [
            {
              'Node Type': 'Seq Scan',
              'Parent Relationship': 'Outer',
              'Parallel Aware': true,
              'Relation Name': 'events',
              Schema: 'public',
              Alias: 'e',
              'Startup Cost': 0,
              'Total Cost': 80,
              'Plan Rows': 1000,
              'Plan Width': 8,
              'Actual Loops': 3,
              'Actual Rows': 17,
              Filter: '(e.tenant_id = 7)',
              'Rows Removed by Filter': 33000,
            },
          ],
        },
        {
          'Node Type': 'Aggregate',
          Strategy: 'Hashed',
          'Parent Relationship': 'SubPlan',
          'Subplan Name': 'SubPlan 1',
          'Startup Cost': 0,
          'Total Cost': 1,
          'Plan Rows': 1,
          'Plan Width': 8,
          'Actual Loops': 0,
          'Actual Rows': 0,
        },
      ],
    },
    'Planning Time': 0.3,
    'Execution Time': 1.4,
    JIT: { Functions: 4, Options: { Inlining: false }, Timing: { Generation: { Deform: 0.1, Total: 0.4 }, Total: 12.5 } },
    Settings: { work_mem: '64kB' },
    'Query Identifier': -707094733591145176,
    Triggers: [],
  },
];

describe('the EXPLAIN JSON reader', () => {
  it('reads every node in preorder with its kind, path and typed properties', () => {
    const explain = readExplain(plan);
    const nodes = [...walkPlan(explain.plan)];
    expect(nodes.map((n) => [n.id, n.kind, n.path])).toEqual([
      [0, 'limit', []],
      [1, 'unknown', [0]],
      [2, 'seq-scan', [0, 0]],
      [3, 'aggregate', [1]],
    ]);
    const scan = nodes[2]!;
    expect(scan.relation).toEqual({ schema: 'public', name: 'events', alias: 'e' });
    expect(scan.actual).toEqual({ startupMs: 0, totalMs: 0, rows: 17, loops: 3 });
    expect(scan.rowsRemovedByFilter).toBe(33000);
    expect(explain.nodeCount).toBe(4);
    expect(explain.planningMs).toBe(0.3);
    expect(explain.settings).toEqual({ work_mem: '64kB' });
    expect(explain.plan.buffers).toEqual({ sharedHit: 12, sharedRead: 3, sharedDirtied: 0, sharedWritten: 0, tempRead: 0, tempWritten: 0 });
  });

  it('keeps a node type it does not know, with all its properties and its children', () => {
    const unknown = [...walkPlan(readExplain(plan).plan)][1]!;
    expect(unknown.kind).toBe('unknown');
    expect(unknown.nodeType).toBe('Frobnicate Scan');
    expect(unknown.properties['Frobnication Level']).toBe(11);
    expect(unknown.children.map((c) => c.nodeType)).toEqual(['Seq Scan']);
  });

  it('reads JIT timing in PostgreSQL 17 shape (Generation as an object) and 14-16 shape alike', () => {
    expect(readExplain(plan).jit).toEqual({ functions: 4, totalMs: 12.5 });
    const older = [{ ...plan[0], JIT: { Functions: 2, Timing: { Generation: 0.2, Inlining: 0, Optimization: 1, Emission: 3, Total: 4.2 } } }];
    expect(readExplain(older).jit).toEqual({ functions: 2, totalMs: 4.2 });
  });

  it('marks a node that never ran, and names nodes as the text format does', () => {
    const nodes = [...walkPlan(readExplain(plan).plan)];
    expect(nodes[3]!.neverExecuted).toBe(true);
    expect(nodeLabel(nodes[2]!)).toBe('Parallel Seq Scan on public.events e');
    expect(nodeLabel(nodes[3]!)).toBe('HashAggregate');
  });

  it('reads the text of the column, keeping the 64-bit query identifier exact', () => {
    const text = JSON.stringify(plan).replace(/"Query Identifier":-?\d+/, '"Query Identifier": -707094733591145176');
    const explain = readExplain(text);
    expect(explain.plan.kind).toBe('limit');
    expect(explain.queryId).toBe('-707094733591145176');
  });

  it('refuses output that is not an EXPLAIN plan', () => {
    expect(() => readExplain('{"nope": 1}')).toThrow(ExplainFormatError);
    expect(() => readExplain('not json')).toThrow(/not JSON/);
  });

  it('folds the scans of a partitioned table into one line of its access summary', () => {
    const appended = readExplain([
      {
        Plan: {
          'Node Type': 'Append',
          Plans: ['events_2026_01', 'events_2026_02', 'events_default'].map((name) => ({
            'Node Type': 'Seq Scan',
            'Relation Name': name,
            Schema: 'public',
          })),
        },
      },
    ]);
    const parentOf = (relation: string): string | undefined => (relation.startsWith('public.events_') ? 'public.events' : undefined);
    expect(describeAccess(appended.plan, parentOf)).toBe('Seq Scan on 3 partitions of public.events');
  });
});

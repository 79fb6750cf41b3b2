import { describe, expect, it } from 'vitest';
import { readWorkloadFile, splitStatements, WorkloadFileError } from '../../engine/advisor/workload-file.ts';

describe('a workload file', () => {
  it('splits at semicolons outside quotes, dollar quotes and comments, each statement with the line it starts on', () => {
    const text = "select ';' as a;\n/* a ; comment */ select $$ ; $$, \"x;y\" from t;\n-- note ;\nselect E'it\\'s;'\n  from t";
    expect(splitStatements(text).map((c) => [c.line, c.sql])).toEqual([
      [1, "select ';' as a"],
      [2, 'select $$ ; $$, "x;y" from t'],
      [4, "select E'it\\'s;'\n  from t"],
    ]);
  });

  it('reads calls, weight and mean time from the comment lines right before a statement', () => {
    const text = '-- calls: 100\n-- mean_ms: 2.5\nselect 1;\n-- weight: 0.5\nselect 2;\nselect 3; -- calls: 7\n';
    const read = readWorkloadFile(text, 'w.sql');
    expect(read.map((s) => [s.stats.key, s.stats.calls, s.stats.meanMs, s.timed])).toEqual([
      ['w.sql:3', 100, 2.5, true],
      ['w.sql:5', 0.5, 0, false],
      ['w.sql:6', 1, 0, false],
    ]);
  });

  it('rejects a malformed annotation with its file:line:col', () => {
    expect(() => readWorkloadFile('select 1;\n-- mean_ms: -3\nselect 2;', 'w.sql')).toThrow(new WorkloadFileError('w.sql:2:1: mean_ms must be a number >= 0, got "-3"'));
  });
});

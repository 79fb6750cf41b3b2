/**
 * `npm run bench:import`: `pgwarden import` on the catalog benchmark's catalog (bench/catalog-plan.ts
 * builds it: 5,000 tables with 4 indexes each, a table with 1,000 partitions), side by side with pgwarden's
 * own introspection (floor A), then the plan of the imported policies: the first one (adoptions only),
 * apply, and the warm one (must be "0 changes"). Medians, a fresh connection per run.
 *
 * Options: those of bench/catalog-plan.ts (--tables, --partitions, --runs, --keep).
 */
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { apply } from '../engine/apply/apply.ts';
import { catalogSession, introspect } from '../engine/catalog/introspect.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';
import { planImportWrites, writeImport } from '../engine/import/policy-file-merge.ts';
import { readImport } from '../engine/import/read-import.ts';
import { readImportFacts } from '../engine/catalog/import-queries.ts';
import { makePlan } from '../engine/plan/make-plan.ts';
import { formatPolicyError } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import {
  buildCatalog,
  catalogIsBuilt,
  catalogSize,
  DATABASE,
  fmtMs,
  KEEP,
  log,
  measure,
  medianMs,
  roundTripsOf,
  RUNS,
  settle,
  withFreshClient,
  type Series,
} from './catalog-plan.ts';

const header = { modeline: '# yaml-language-server: $schema=https://pgwarden.dev/schema/policy.schema.json', provenance: 'Imported by bench/import.ts' };
const everything = { schemas: [], tables: [] };

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0] ?? 0;
  const baseDir = KEEP ? path.join(os.tmpdir(), 'pgwarden-bench-keep') : await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-'));
  await mkdir(baseDir, { recursive: true });
  await chmod(baseDir, 0o755);
  const policiesDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-import-'));
  try {
    const kept = KEEP && (await access(path.join(baseDir, 'cluster.json')).then(() => true, () => false));
    const ports = kept ? {} : { primaryPort: await freePort(), standbyPort: await freePort() };
    const urls = await clusterUp({ baseDir, ...ports, settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }, log });
    const adminUrl = urls.primaryUrl;
    const url = withDatabase(adminUrl, DATABASE);
    if (KEEP && (await catalogIsBuilt(adminUrl))) log('reusing the catalog built by an earlier --keep run');
    else log(`built the catalog in ${fmtMs(await buildCatalog(adminUrl, url))}`);
    await withFreshClient(url, async (c) => {
      await c.query('DROP SCHEMA IF EXISTS pgwarden CASCADE');
    });
    await settle(url, adminUrl);
    const size = await catalogSize(url);

    // Side by side: each run measures floor A, then import's read, then the whole import, on fresh
    // connections, so that the ratios compare runs made under the same load.
    const floorA = { label: 'floor A: introspect()', samples: [] as Series['samples'][number][] };
    const facts = { label: '  of which the names and defaults query', samples: [] as Series['samples'][number][] };
    const read = { label: 'import: read the catalog', samples: [] as Series['samples'][number][] };
    const whole = { label: 'import: read + render every file (not written)', samples: [] as Series['samples'][number][] };
    let tables = 0;
    let indexes = 0;
    for (let i = 0; i < RUNS; i += 1) {
      floorA.samples.push(...(await measure('floor A', url, 1, async (c) => {
        const session = catalogSession(c);
        await introspect(session, []);
        return session.roundTrips;
      }, 1)).samples);
      facts.samples.push(...(await measure('facts', url, 1, async (c) => {
        await readImportFacts(catalogSession(c));
        return 1;
      }, 1)).samples);
      read.samples.push(...(await measure('import read', url, 1, async (c) => {
        const result = await readImport(c, everything, new Date());
        tables = result.tables.length;
        indexes = result.tables.reduce((n, t) => n + t.indexes.size, 0);
        return result.roundTrips;
      }, 1)).samples);
      whole.samples.push(...(await measure('import read + render', url, 1, async (c) => {
        const result = await readImport(c, everything, new Date());
        await planImportWrites(path.join(policiesDir, 'none'), 'policies', result.tables, { prune: false, header });
        return result.roundTrips;
      }, 1)).samples);
    }
    const result = await withFreshClient(url, (c) => readImport(c, everything, new Date()));
    const imported = path.join(policiesDir, 'policies');
    const planned = await planImportWrites(imported, 'policies', result.tables, { prune: false, header });
    // Writing thousands of files is the file system's time: side by side with plain writes of the same texts.
    const plainDir = path.join(policiesDir, 'plain');
    await mkdir(plainDir);
    let t0 = performance.now();
    for (let i = 0; i < planned.writes.length; i += 64) {
      await Promise.all(planned.writes.slice(i, i + 64).map((w) => writeFile(path.join(plainDir, w.file), w.after)));
    }
    const plainMs = performance.now() - t0;
    t0 = performance.now();
    await writeImport(imported, 'policies', planned.writes);
    const writeMs = performance.now() - t0;
    const loaded = await loadPolicies(imported);
    if (loaded.errors.length > 0) throw new Error(`the imported policies do not load: ${loaded.errors.slice(0, 3).map(formatPolicyError).join('; ')}`);
    const desired = loaded.desired;

    let firstChanges = 0;
    const first = await measure('first plan of the imported policies', url, 1, async (c) => {
      const outcome = await makePlan(c, desired, new Date());
      if (!outcome.ok) throw new Error(`the plan failed: ${outcome.errors.slice(0, 3).map(formatPolicyError).join('; ')}`);
      const ddl = outcome.plan.changes.filter((p) => p.steps.some((s) => s.kind === 'sql'));
      if (ddl.length > 0) throw new Error(`the first plan holds DDL: ${ddl.slice(0, 3).map((p) => p.change.address).join(', ')}`);
      firstChanges = outcome.plan.changes.length;
      return outcome.roundTrips;
    }, 1);
    const applied = await apply({ databaseUrl: url, desired, allowDrop: false, lockTimeoutMs: 5000, buildTimeoutMs: 0, retries: 3, backoffMs: 200, now: () => new Date() });
    log(`apply: ${applied.applied} changes`);
    await settle(url, adminUrl);
    const warm = await measure('warm plan of the imported policies', url, RUNS, async (c) => {
      const outcome = await makePlan(c, desired, new Date());
      if (!outcome.ok) throw new Error('the warm plan failed');
      if (outcome.plan.changes.length !== 0) throw new Error(`the warm plan has ${outcome.plan.changes.length} changes, expected 0`);
      return outcome.roundTrips;
    });

    const rows: string[][] = [['', 'median', 'round trips', 'runs', 'vs floor A']];
    const row = (s: Series): void => {
      rows.push([s.label, fmtMs(medianMs(s)), roundTripsOf(s), String(s.samples.length), `${(medianMs(s) / medianMs(floorA)).toFixed(2)}x`]);
    };
    for (const s of [floorA, read, facts, whole, first, warm]) row(s);
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    const lines = [
      `pgwarden import benchmark — medians, a fresh connection per run (connect not timed); PostgreSQL ${size.server}, ${os.cpus().length} cores`,
      `catalog: ${size.tables} tables + ${size.partitioned} partitioned table with ${size.partitions} partitions; ${size.indexes} indexes`,
      `imported: ${tables} tables, ${indexes} indexes declared, ${planned.writes.length} files written in ${fmtMs(writeMs)} (temporary file + rename each; plain writeFile of the same texts: ${fmtMs(plainMs)}); first plan: ${firstChanges} changes, no DDL; apply, then the warm plan: 0 changes`,
      '',
      ...rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ')),
      '',
      `load average (1 min) at start / end: ${loadAtStart.toFixed(1)} / ${(os.loadavg()[0] ?? 0).toFixed(1)}`,
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
  } finally {
    await clusterDown({ baseDir, destroy: !KEEP }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
    await rm(policiesDir, { recursive: true, force: true });
    if (!KEEP) await rm(baseDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

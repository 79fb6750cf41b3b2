/**
 * CLI start and policy loading (issue 14), process start to exit, medians side by side in one run.
 *
 *   node bench/cli-start.mjs [--runs 9]
 *
 * Builds dist/ first (`npm run build`), so both the checkout's bin/pgwarden.js and the published form
 * (`node dist/engine/cli/bin.js`, what the tarball's bin runs) are measured on current code, next to
 * `node -e ''` on the same machine. Policy loading is measured on two generated policy sets in a
 * temporary folder: the catalog benchmark's 15,001 indexes (5 files of 1,000 documents, as
 * `npm run bench` writes them) and 1,000 files of 3 indexes each (the shape of real repositories);
 * in-process `loadPolicies` (modules already loaded) and the whole `pgwarden validate`.
 * No database is needed; compare loadPolicies with floor A printed by `npm run bench`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const RUNS = Number(values.runs);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function timeProcess(args) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return ms;
}

// --- policy sets -----------------------------------------------------------------------------------

function indexYaml(table, n) {
  const lines = [];
  lines.push(n % 3 === 1 ? `  - name: ${table}_tenant_created_idx\n    columns: [tenant_id, created_at]` : `  - name: ${table}_tenant_created_idx\n    columns: [tenant_id, created_at desc]`);
  lines.push(n % 10 === 5 ? `  - name: ${table}_email_key\n    columns: [email]\n    unique: true` : `  - name: ${table}_status_idx\n    columns: [status]\n    include: [amount]`);
  lines.push(
    n % 25 === 0
      ? `  - name: ${table}_lower_email_idx\n    columns:\n      - expression: "lower(email)"`
      : n % 25 === 1
        ? `  - name: ${table}_kind_open_idx\n    columns: [kind, tenant_id]\n    where: "status <> 'archived'"`
        : `  - name: ${table}_kind_idx\n    columns: [kind]`,
  );
  return lines.join('\n');
}

function tableDocument(schema, n) {
  const table = `t${String(n).padStart(4, '0')}`;
  return `table: ${schema}.${table}\nindexes:\n${indexYaml(table, n)}\n`;
}

/** 5,000 tables × 3 indexes in 5 files, plus one partitioned table's index: 15,001. */
function writeCatalogShape(dir) {
  mkdirSync(dir, { recursive: true });
  for (let s = 0; s < 5; s += 1) {
    const docs = Array.from({ length: 1000 }, (_, i) => tableDocument(`bench_${'abcde'[s]}`, s * 1000 + i));
    writeFileSync(path.join(dir, `bench_${'abcde'[s]}.yaml`), `---\n${docs.join('---\n')}`);
  }
  writeFileSync(path.join(dir, 'bench_p.yaml'), 'table: bench_p.events\nindexes:\n  - name: events_tenant_created_idx\n    columns: [tenant_id, created_at]\n');
}

/** 1,000 files of one table and 3 indexes each, in 10 folders. */
function writeRepositoryShape(dir) {
  for (let i = 0; i < 1000; i += 1) {
    const folder = path.join(dir, `area${i % 10}`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, `t${i}.yaml`), tableDocument('app', i));
  }
}

// --- run -------------------------------------------------------------------------------------------

process.stderr.write('building dist/ (npm run build) ...\n');
execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });

const work = mkdtempSync(path.join(tmpdir(), 'pgwarden-cli-start-'));
try {
  const catalog = path.join(work, 'catalog');
  const repository = path.join(work, 'repository');
  writeCatalogShape(catalog);
  writeRepositoryShape(repository);

  const cases = [
    { label: "node -e ''", args: ['-e', ''] },
    { label: 'pgwarden --help (published: dist)', args: ['dist/engine/cli/bin.js', '--help'] },
    { label: 'pgwarden --help (checkout: bin/)', args: ['bin/pgwarden.js', '--help'] },
    { label: 'pgwarden validate, 5 bundled files (dist)', args: ['dist/engine/cli/bin.js', 'validate'] },
    { label: 'pgwarden validate, 5 bundled files (bin/)', args: ['bin/pgwarden.js', 'validate'] },
    { label: 'pgwarden validate, 15,001 indexes (dist)', args: ['dist/engine/cli/bin.js', 'validate', '--policies', catalog] },
    { label: 'pgwarden validate, 1,000 files (dist)', args: ['dist/engine/cli/bin.js', 'validate', '--policies', repository] },
  ];
  const samples = new Map(cases.map((c) => [c.label, []]));
  // Interleaved, so the machine's load falls on every case alike.
  for (let run = 0; run < RUNS; run += 1) {
    for (const c of cases) samples.get(c.label).push(timeProcess(c.args));
  }

  const { loadPolicies } = await import(new URL('../dist/engine/policy/load.js', import.meta.url).href);
  const inProcess = [];
  for (const [label, dir] of [
    ['loadPolicies, 15,001 indexes (in process)', catalog],
    ['loadPolicies, 1,000 files (in process)', repository],
  ]) {
    const times = [];
    for (let run = 0; run < RUNS; run += 1) {
      const start = performance.now();
      const { errors, desired } = await loadPolicies(dir);
      times.push(performance.now() - start);
      if (errors.length > 0) throw new Error(`${label}: ${errors[0].message}`);
      if (run === 0) process.stderr.write(`${label}: ${desired.tables.length} tables, ${desired.tables.reduce((n, t) => n + t.indexes.length, 0)} indexes\n`);
    }
    inProcess.push([label, times]);
  }

  const base = median(samples.get("node -e ''"));
  console.log(`node ${process.version}, ${RUNS} runs each, medians (process start to exit)`);
  console.log(`${''.padEnd(46)}  median    min    vs node -e ''`);
  for (const c of cases) {
    const xs = samples.get(c.label);
    console.log(`${c.label.padEnd(46)}  ${median(xs).toFixed(0).padStart(5)} ms ${Math.min(...xs).toFixed(0).padStart(4)} ms   ${(median(xs) / base).toFixed(1)}x`);
  }
  for (const [label, xs] of inProcess) {
    console.log(`${label.padEnd(46)}  ${median(xs).toFixed(0).padStart(5)} ms ${Math.min(...xs).toFixed(0).padStart(4)} ms`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

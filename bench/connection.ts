/**
 * What opening a connection through pgwarden's connection module costs, against node-postgres given the
 * same server directly (the baseline, measured in the same run): connect + `SELECT 1` + end, medians of
 * ROUNDS, on a throwaway PostgreSQL 16 with ssl=off and one with ssl=on (a private CA).
 *
 *   node --import tsx bench/connection.ts
 */
import path from 'node:path';
import pg from 'pg';
import { binariesFor } from '../engine/cluster/binaries.ts';
import { resolveConnection } from '../engine/connection/connection-settings.ts';
import { connect } from '../engine/connection/open-connection.ts';
import { startTlsServer } from '../test/support/tls-server.ts';
import { startServer } from '../test/support/throwaway-server.ts';

const ROUNDS = 21;

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function timed(open: () => Promise<pg.Client>): Promise<number> {
  const t0 = performance.now();
  const client = await open();
  await client.query('SELECT 1');
  const ms = performance.now() - t0;
  await client.end();
  return ms;
}

/** The baseline: node-postgres itself, deliberately not through the connection module it is compared with. */
async function driver(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  await client.connect();
  return client;
}

const pgwarden = (url: string) => (): Promise<pg.Client> => connect(resolveConnection({ connectionString: url, env: {} }));

async function measure(cases: Record<string, () => Promise<pg.Client>>): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(Object.keys(cases).map((k) => [k, []]));
  // Interleaved, so that a busy machine slows every case alike, and rotated, so that no case always runs
  // right after another one's session ended (its backend still exiting).
  const entries = Object.entries(cases);
  for (let round = 0; round < ROUNDS; round += 1) {
    for (let i = 0; i < entries.length; i += 1) {
      const [name, open] = entries[(round + i) % entries.length] ?? entries[0]!;
      samples.get(name)?.push(await timed(open));
    }
  }
  return new Map([...samples].map(([k, v]) => [k, median(v)]));
}

function print(title: string, results: Map<string, number>, baseline: string): void {
  const base = results.get(baseline) ?? NaN;
  console.log(`\n${title} (median of ${ROUNDS}, connect + SELECT 1 + end)`);
  for (const [name, ms] of results) console.log(`  ${name.padEnd(56)} ${ms.toFixed(2).padStart(7)} ms  x${(ms / base).toFixed(2)}`);
}

const bins = await binariesFor(process.getuid?.() === 0 ? 'postgres' : undefined);
const plain = await startServer({ bin: path.dirname(bins.pgCtl), installHint: 'npm install' });
const tls = await startTlsServer();
try {
  print(
    'ssl=off server',
    await measure({
      'node-postgres, no ssl (baseline)': () => driver({ connectionString: plain.adminUrl }),
      'pgwarden sslmode=disable': pgwarden(`${plain.adminUrl}?sslmode=disable`),
      'pgwarden sslmode=prefer (default; "no SSL" remembered)': pgwarden(plain.adminUrl),
    }),
    'node-postgres, no ssl (baseline)',
  );
  const tlsUrl = `postgres://tls_only@localhost:${tls.port}/postgres`;
  print(
    'ssl=on server, private CA',
    await measure({
      'node-postgres, ssl without verification (baseline)': () => driver({ host: 'localhost', port: tls.port, user: 'tls_only', database: 'postgres', ssl: { rejectUnauthorized: false } }),
      'pgwarden sslmode=require': pgwarden(`${tlsUrl}?sslmode=require`),
      'pgwarden sslmode=verify-full, sslrootcert=CA': pgwarden(`${tlsUrl}?sslmode=verify-full&sslrootcert=${encodeURIComponent(tls.caFile)}`),
    }),
    'node-postgres, ssl without verification (baseline)',
  );
} finally {
  await plain.stop();
  await tls.stop();
}

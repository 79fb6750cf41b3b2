import { access, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { ident } from '../../engine/sql/ident.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

/**
 * A throwaway PostgreSQL 15 server from Debian's packages (postgresql-15, postgresql-15-hypopg; `.ci/run`
 * installs them), for the advisor's hypopg path and the pre-16 EXPLAIN path: the embedded server is 16
 * and ships no hypopg. As root, the server runs as the `postgres` OS user, like the embedded cluster.
 */
export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export interface Pg15Cluster {
  readonly adminUrl: string;
  /** A fresh database with pg_stat_statements (and hypopg when asked). */
  database(name: string, extensions: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

const asRoot = userInfo().uid === 0;

async function runPg(bin: string, args: readonly string[]): Promise<void> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(PG15_BIN, bin), ...args]] : [path.join(PG15_BIN, bin), [...args]];
  await execa(file, argv, { stdin: 'ignore', env: { LC_ALL: 'C' }, timeout: 60_000 });
}

export async function startPg15(): Promise<Pg15Cluster> {
  await access(path.join(PG15_BIN, 'initdb')).catch(() => {
    throw new Error(`PostgreSQL 15 is not installed (${PG15_BIN}); .ci/run installs postgresql-15 and postgresql-15-hypopg`);
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-pg15-'));
  // mkdtemp makes 0700; the postgres OS user must reach the data directory inside it.
  await chmod(dir, 0o755);
  const data = path.join(dir, 'data');
  if (asRoot) await execa('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '0700', data]);
  const port = await freePort();
  try {
    await runPg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions']);
    const options = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      "-c unix_socket_directories=''",
      '-c shared_preload_libraries=pg_stat_statements',
      '-c pg_stat_statements.track=top',
      // A throwaway server: durability buys nothing and costs the suite time.
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
    ].join(' ');
    await runPg('pg_ctl', ['start', '-D', data, '-l', path.join(data, 'server.log'), '-w', '-t', '60', '-o', options]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    adminUrl,
    async database(name, extensions) {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${ident(name)}`);
      } finally {
        await admin.end();
      }
      const url = `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        for (const extension of extensions) await client.query(`CREATE EXTENSION IF NOT EXISTS ${ident(extension)}`);
      } finally {
        await client.end();
      }
      return url;
    },
    async stop() {
      await runPg('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

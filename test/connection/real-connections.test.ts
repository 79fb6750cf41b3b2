import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resolveConnection, type Environment } from '../../engine/connection/connection-settings.ts';
import { connect, createPool } from '../../engine/connection/open-connection.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { startTlsServer, type TlsServer } from '../support/tls-server.ts';

/**
 * Connections against real servers: a PostgreSQL 16 with ssl=on and a private CA (the file's own), and
 * the suite's primary + standby for multi-host URLs.
 *
 * libpq is the oracle: for every sslmode × root certificate (the signing CA, none, a wrong CA) × host
 * name (the certificate's, or an address it does not name) × pg_hba rule (TLS required, TLS refused),
 * pgwarden connects exactly when `psql` does with the same URL, and encrypts exactly when it does.
 */
const MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
const ROOTS = ['right', 'none', 'wrong'] as const;
const HOSTS = ['localhost', '127.0.0.1'] as const;
const ROLES = ['tls_only', 'plain_only'] as const;

type Outcome = 'refused' | 'tls' | 'plain';

const SSL_IN_USE = 'SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()';

let tls: TlsServer;

// Both sides see the same, clean environment: no PG* variable of the machine's.
const cleanEnv = (): Record<string, string> => ({ PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: homedir(), PGCONNECT_TIMEOUT: '10' });

async function psqlOutcome(url: string): Promise<Outcome> {
  const r = await execa('psql', [url, '-X', '-A', '-t', '-c', SSL_IN_USE], { env: cleanEnv(), extendEnv: false, reject: false, stdin: 'ignore', timeout: 60_000 });
  if (r.exitCode !== 0) return 'refused';
  return r.stdout.trim() === 't' ? 'tls' : 'plain';
}

async function pgwardenOutcome(url: string): Promise<Outcome> {
  let client;
  try {
    client = await connect(resolveConnection({ connectionString: url, env: cleanEnv() }), { connectionTimeoutMillis: 10_000 });
  } catch {
    return 'refused';
  }
  try {
    const { rows } = await client.query<{ ssl: boolean }>(SSL_IN_USE);
    return rows[0]?.ssl === true ? 'tls' : 'plain';
  } finally {
    await client.end();
  }
}

/** A few at a time: each psql is a process, and the machine is shared. */
async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

let project: string;

beforeAll(async () => {
  tls = await startTlsServer();
  // A table the TLS-only role owns, and a policy for it: what `plan` needs to run end to end.
  const admin = await connect(resolveConnection({ connectionString: `${tls.server.adminUrl}?sslmode=disable`, env: {} }));
  try {
    await admin.query('CREATE DATABASE app OWNER tls_only');
  } finally {
    await admin.end();
  }
  const owner = await connect(resolveConnection({ connectionString: `postgres://tls_only@localhost:${tls.port}/app?sslmode=require`, env: {} }));
  try {
    await owner.query('CREATE TABLE public.events (id bigint PRIMARY KEY, tenant_id int NOT NULL)');
  } finally {
    await owner.end();
  }
  project = await projectWith({ 'events.yaml': 'table: public.events\nindexes:\n  - name: events_tenant_idx\n    columns: [tenant_id]\n' });
}, 180_000);

afterAll(async () => {
  await tls?.stop();
  if (project) await rm(project, { recursive: true, force: true });
});

/** Runs the CLI, collecting every process warning it causes (node-postgres's SECURITY WARNING among them). */
async function cli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; warnings: string[] }> {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.message);
  };
  process.on('warning', onWarning);
  try {
    const result = await runCli(args, { cwd: project, env: { HOME: homedir(), ...env } });
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
    return { ...result, warnings };
  } finally {
    process.off('warning', onWarning);
  }
}

describe('TLS with libpq meanings, psql as the oracle', () => {
  it('connects, encrypts or refuses exactly as psql does for every sslmode, root certificate, host name and pg_hba rule', async () => {
    // "No root certificate" means libpq's default file, which must not exist for this case to mean anything.
    expect(existsSync(path.join(homedir(), '.postgresql', 'root.crt'))).toBe(false);
    const cases = MODES.flatMap((mode) =>
      ROOTS.flatMap((root) =>
        HOSTS.flatMap((host) =>
          ROLES.map((role) => {
            const rootParam = root === 'right' ? `&sslrootcert=${encodeURIComponent(tls.caFile)}` : root === 'wrong' ? `&sslrootcert=${encodeURIComponent(tls.wrongCaFile)}` : '';
            return `postgres://${role}@${host}:${tls.port}/postgres?sslmode=${mode}${rootParam}`;
          }),
        ),
      ),
    );
    expect(cases).toHaveLength(72);
    const results = await inBatches(cases, 4, async (url) => ({ url, psql: await psqlOutcome(url), pgwarden: await pgwardenOutcome(url) }));
    const differing = results.filter((r) => r.psql !== r.pgwarden);
    expect(differing).toEqual([]);
    // The matrix exercises every outcome, so that agreement is not agreement on "refused" alone.
    const seen = new Set(results.map((r) => r.psql));
    expect([...seen].sort()).toEqual(['plain', 'refused', 'tls']);
  }, 300_000);
});

describe('pgwarden plan over TLS, as a managed provider presents it', () => {
  it('plans with sslmode=require against a private CA, as psql connects, and no driver warning reaches the user', async () => {
    const url = `postgres://tls_only@localhost:${tls.port}/app?sslmode=require`;
    const result = await cli(['plan', '--format', 'json'], { DATABASE_URL: url });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { changes: unknown[] }).changes).toHaveLength(1);
    expect(result.warnings).toEqual([]);
    expect(await psqlOutcome(url)).toBe('tls');
  });

  it('honours PGSSLMODE and PGSSLROOTCERT without a URL', async () => {
    const result = await cli(['plan', '--format', 'json'], { PGHOST: 'localhost', PGPORT: String(tls.port), PGUSER: 'tls_only', PGDATABASE: 'app', PGSSLMODE: 'verify-full', PGSSLROOTCERT: tls.caFile });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('says in one line that the certificate is not trusted, naming the mode and the fix', async () => {
    const result = await cli(['plan'], { DATABASE_URL: `postgres://tls_only@localhost:${tls.port}/app?sslmode=verify-ca&sslrootcert=${tls.wrongCaFile}` });
    expect(result.code).toBe(1);
    const [line, hint, ...rest] = result.stderr.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(line).toBe(
      `pgwarden: cannot connect to the database: connection to server at "localhost", port ${tls.port} failed: the server's certificate is not trusted (unable to verify the first certificate; sslmode=verify-ca, root certificates from ${tls.wrongCaFile})`,
    );
    expect(hint).toBe("  hint: give the CA that signed it with sslrootcert=FILE (your provider's CA bundle, see docs/managed-databases.md), or sslmode=require to encrypt without verifying");
  });

  it('says in one line that verify-full needs a root certificate when none is given', async () => {
    const result = await cli(['plan'], { DATABASE_URL: `postgres://tls_only@localhost:${tls.port}/app?sslmode=verify-full` });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(
      `pgwarden: cannot connect to the database: connection to server at "localhost", port ${tls.port} failed: root certificate file "${path.join(homedir(), '.postgresql', 'root.crt')}" does not exist (sslmode=verify-full)`,
    );
    expect(result.stderr).toContain('sslrootcert=FILE');
  });

  it('says in one line that the host name does not match under verify-full', async () => {
    const result = await cli(['plan'], { DATABASE_URL: `postgres://tls_only@127.0.0.1:${tls.port}/app?sslmode=verify-full&sslrootcert=${tls.caFile}` });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toBe(
      `pgwarden: cannot connect to the database: connection to server at "127.0.0.1", port ${tls.port} failed: the server's certificate does not match the host name "127.0.0.1" (sslmode=verify-full; the certificate names DNS:localhost)`,
    );
  });

  it('refuses an unsupported option and an unknown one in one line each, before connecting', async () => {
    const unsupported = await cli(['plan'], { DATABASE_URL: `postgres://tls_only@localhost:${tls.port}/app?sslcrl=/x.crl` });
    expect(unsupported.code).toBe(1);
    expect(unsupported.stderr.split('\n')[0]).toBe('pgwarden: cannot use the connection: connection option "sslcrl" (in DATABASE_URL) is not supported by pgwarden');
    const unknown = await cli(['plan', '--database-url', `host=localhost port=${tls.port} sslmod=require`], {});
    expect(unknown.stderr.split('\n')[0]).toBe('pgwarden: cannot use the connection: invalid connection option "sslmod" in --database-url');
  });
});

describe('passwords from where libpq finds them, never printed', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-pw-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const base = (): string => `postgres://secret_user@localhost:${tls.port}/postgres?sslmode=require`;

  async function connects(url: string | undefined, env: Environment): Promise<string> {
    try {
      const client = await connect(resolveConnection({ ...(url === undefined ? {} : { connectionString: url }), env: { HOME: dir, ...env } }));
      await client.end();
      return 'connected';
    } catch (error) {
      return (error as Error).message;
    }
  }

  it('reads the password from PGPASSWORD', async () => {
    expect(await connects(base(), { PGPASSWORD: tls.password })).toBe('connected');
  });

  it('reads it from the password file (PGPASSFILE), and a URL password overrides the file', async () => {
    const file = path.join(dir, 'pgpass');
    await writeFile(file, `localhost:${tls.port}:*:secret_user:${tls.password}\n`);
    await chmod(file, 0o600);
    expect(await connects(base(), { PGPASSFILE: file })).toBe('connected');
    const wrong = await connects(base().replace('secret_user@', 'secret_user:wrong-one@'), { PGPASSFILE: file });
    expect(wrong).toContain('password authentication failed for user "secret_user"');
    expect(wrong).not.toContain('wrong-one');
  });

  it('reads it from ~/.pgpass by default', async () => {
    const file = path.join(dir, '.pgpass');
    await writeFile(file, `*:*:*:secret_user:${tls.password}\n`);
    await chmod(file, 0o600);
    expect(await connects(base(), {})).toBe('connected');
    await rm(file);
  });

  it('says which file it ignored and why when the server asks for a password it does not have', async () => {
    const file = path.join(dir, 'open-pgpass');
    await writeFile(file, `*:*:*:secret_user:${tls.password}\n`);
    await chmod(file, 0o644);
    expect(await connects(base(), { PGPASSFILE: file })).toBe(
      `cannot connect to the database: connection to server at "localhost", port ${tls.port} failed: the server asks for a password for user "secret_user" and none was given (password file "${file}" has group or world access; permissions should be u=rw (0600) or less)`,
    );
  });

  it('connects through a service file (PGSERVICEFILE + PGSERVICE), and the URL overrides it', async () => {
    const file = path.join(dir, 'services.conf');
    await writeFile(file, `[tlsdb]\nhost=localhost\nport=${tls.port}\nuser=secret_user\ndbname=postgres\nsslmode=verify-full\nsslrootcert=${tls.caFile}\npassword=${tls.password}\n`);
    expect(await connects(undefined, { PGSERVICEFILE: file, PGSERVICE: 'tlsdb' })).toBe('connected');
    // The URL's host wins over the service's, and 127.0.0.1 is not in the certificate.
    expect(await connects(`postgres://127.0.0.1/postgres`, { PGSERVICEFILE: file, PGSERVICE: 'tlsdb' })).toContain('does not match the host name "127.0.0.1"');
    expect(await connects(undefined, { PGSERVICEFILE: file, PGSERVICE: 'nope', PGSYSCONFDIR: dir })).toBe('definition of service "nope" not found');
  });

  it('never prints the password of a URL, keyword string or PGPASSWORD in the CLI', async () => {
    for (const env of [
      { DATABASE_URL: `postgres://:sup3r-secret@localhost:${tls.port}/postgres?sslmode=require&user=secret_user` },
      { DATABASE_URL: `host=localhost port=${tls.port} user=secret_user password=sup3r-secret sslmode=require` },
      { DATABASE_URL: `postgres://secret_user@localhost:${tls.port}/postgres?sslmode=require`, PGPASSWORD: 'sup3r-secret' },
      { DATABASE_URL: `postgres://secret_user:sup3r-secret@127.0.0.1:1/postgres` },
    ]) {
      const result = await cli(['plan', '--debug'], env);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^pgwarden: cannot connect to the database: /u);
      expect(result.stderr).not.toContain('sup3r');
    }
  });
});

describe('several hosts, tried in order as libpq does, with target_session_attrs', () => {
  const primary = (): URL => new URL(inject('primaryUrl'));
  const standby = (): URL => new URL(inject('standbyUrl'));
  const both = (order: 'primary-first' | 'standby-first', attrs: string): string => {
    const [a, b] = order === 'primary-first' ? [primary(), standby()] : [standby(), primary()];
    return `postgres://${a.username}@${a.host},${b.host}${a.pathname}?sslmode=disable&target_session_attrs=${attrs}`;
  };

  async function inRecovery(url: string): Promise<boolean | string> {
    try {
      const client = await connect(resolveConnection({ connectionString: url, env: {} }));
      try {
        return (await client.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')).rows[0]?.r ?? 'no row';
      } finally {
        await client.end();
      }
    } catch (error) {
      return (error as Error).message;
    }
  }

  it('skips a host that refuses the connection and uses the next one', async () => {
    const p = primary();
    expect(await inRecovery(`postgres://${p.username}@127.0.0.1:1,${p.host}${p.pathname}?sslmode=disable`)).toBe(false);
  });

  it('finds the primary for read-write and primary, the standby for standby and read-only, whatever the order', async () => {
    expect(await inRecovery(both('standby-first', 'read-write'))).toBe(false);
    expect(await inRecovery(both('standby-first', 'primary'))).toBe(false);
    expect(await inRecovery(both('primary-first', 'standby'))).toBe(true);
    expect(await inRecovery(both('primary-first', 'read-only'))).toBe(true);
    expect(await inRecovery(both('standby-first', 'any'))).toBe(true);
  });

  it('prefers a standby, and falls back to the primary when no host is one', async () => {
    expect(await inRecovery(both('primary-first', 'prefer-standby'))).toBe(true);
    const p = primary();
    expect(await inRecovery(`postgres://${p.username}@${p.host}${p.pathname}?sslmode=disable&target_session_attrs=prefer-standby`)).toBe(false);
  });

  it('names every host and why it did not fit when none does', async () => {
    const p = primary();
    const message = await inRecovery(`postgres://${p.username}@127.0.0.1:1,${p.host}${p.pathname}?sslmode=disable&target_session_attrs=standby`);
    expect(message).toBe(
      `cannot connect to the database: connection to server at "127.0.0.1", port 1 failed: Connection refused; connection to server at "${p.hostname}", port ${p.port} failed: server is not in hot standby mode (target_session_attrs=standby)`,
    );
  });

  it('gives a pool the host the search found, for every connection it makes', async () => {
    const pool = createPool(resolveConnection({ connectionString: both('primary-first', 'standby'), env: {} }), { max: 2 });
    try {
      const answers = await Promise.all([1, 2, 3].map(() => pool.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')));
      expect(answers.map((a) => a.rows[0]?.r)).toEqual([true, true, true]);
    } finally {
      await pool.end();
    }
  });
});

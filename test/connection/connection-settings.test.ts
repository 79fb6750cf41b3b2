import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../engine/connection/connection-error.ts';
import { parseConnectionString } from '../../engine/connection/connection-string.ts';
import { resolveConnection, type Environment } from '../../engine/connection/connection-settings.ts';
import { passwordFromText } from '../../engine/connection/pgpass.ts';
import { redact } from '../../engine/connection/redact.ts';

/** Resolution without a server: how libpq reads URLs, keywords, variables and the service file. */
let home: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-conn-home-'));
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

const resolve = (connectionString: string | undefined, env: Environment = {}) =>
  resolveConnection({ ...(connectionString === undefined ? {} : { connectionString }), env, home });

function errorOf(fn: () => unknown): ConnectionError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConnectionError) return error;
    throw error;
  }
  throw new Error('expected a ConnectionError');
}

describe('connection strings as libpq reads them', () => {
  it('reads a multi-host URL with ports, an IPv6 address and percent-encoded parts', () => {
    expect(parseConnectionString('postgresql://a%40b:p%3Ass@db1:5433,[::1]:5434,db3/my%20db?target_session_attrs=read-write&sslmode=verify-full')).toEqual({
      user: 'a@b',
      password: 'p:ss',
      host: 'db1,::1,db3',
      port: '5433,5434,',
      dbname: 'my db',
      target_session_attrs: 'read-write',
      sslmode: 'verify-full',
    });
  });

  it('reads keyword=value pairs with quoted values and escapes', () => {
    expect(parseConnectionString(`host=db port = 6543 password='it\\'s a secret' application_name=x\\ y`)).toEqual({
      host: 'db',
      port: '6543',
      password: "it's a secret",
      application_name: 'x y',
    });
  });

  it("takes a URL's ssl=true as sslmode=require, as libpq does", () => {
    expect(resolve('postgres://u@db/app?ssl=true').ssl.mode).toBe('require');
  });

  it('gives each host of a multi-host URL its own port, in order', () => {
    const s = resolve('postgres://u@h1:5001,h2:5002/app?target_session_attrs=primary');
    expect(s.hosts).toEqual([
      { host: 'h1', port: 5001 },
      { host: 'h2', port: 5002 },
    ]);
    expect(s.targetSessionAttrs).toBe('primary');
  });

  it('rejects an option libpq does not know, naming it', () => {
    expect(errorOf(() => resolve('postgres://u@db/app?sslmod=require')).message).toBe('invalid connection option "sslmod" in the connection string');
  });

  it('rejects an option pgwarden cannot honour in one line, rather than connecting differently from psql', () => {
    expect(errorOf(() => resolve('postgres://u@db/app?sslcrl=/etc/crl.pem')).message).toBe(
      'connection option "sslcrl" (in the connection string) is not supported by pgwarden',
    );
    expect(errorOf(() => resolve('host=db gssencmode=require')).message).toBe(
      'gssencmode "require" (in the connection string) is not supported by pgwarden; it takes disable, prefer',
    );
  });

  it('rejects an sslmode libpq does not have', () => {
    expect(errorOf(() => resolve('postgres://u@db/app?sslmode=no-verify')).message).toMatch(/^sslmode "no-verify" .* it takes disable, allow, prefer, require, verify-ca, verify-full$/);
  });

  it('makes verify-full the default for sslrootcert=system and refuses a weaker mode with it (libpq 16)', () => {
    expect(resolve('postgres://u@db/app?sslrootcert=system').ssl.mode).toBe('verify-full');
    expect(errorOf(() => resolve('postgres://u@db/app?sslrootcert=system&sslmode=require')).message).toBe(
      'weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")',
    );
  });
});

describe('the PG* variables, each alone and under a URL that overrides it', () => {
  const cases: readonly { variable: string; value: string; read: (s: ReturnType<typeof resolve>) => unknown; expected: unknown; url: string; overridden: unknown }[] = [
    { variable: 'PGHOST', value: 'envhost', read: (s) => s.hosts[0]?.host, expected: 'envhost', url: 'postgres://urlhost/db', overridden: 'urlhost' },
    { variable: 'PGPORT', value: '6000', read: (s) => s.hosts[0]?.port, expected: 6000, url: 'postgres://h:7000/db', overridden: 7000 },
    { variable: 'PGUSER', value: 'envuser', read: (s) => s.user, expected: 'envuser', url: 'postgres://urluser@h/db', overridden: 'urluser' },
    { variable: 'PGPASSWORD', value: 'envpw', read: (s) => s.password, expected: 'envpw', url: 'postgres://u:urlpw@h/db', overridden: 'urlpw' },
    { variable: 'PGDATABASE', value: 'envdb', read: (s) => s.database, expected: 'envdb', url: 'postgres://h/urldb', overridden: 'urldb' },
    { variable: 'PGAPPNAME', value: 'envapp', read: (s) => s.applicationName, expected: 'envapp', url: 'postgres://h/db?application_name=urlapp', overridden: 'urlapp' },
    { variable: 'PGCONNECT_TIMEOUT', value: '7', read: (s) => s.connectTimeoutMs, expected: 7000, url: 'postgres://h/db?connect_timeout=3', overridden: 3000 },
    { variable: 'PGSSLMODE', value: 'verify-ca', read: (s) => s.ssl.mode, expected: 'verify-ca', url: 'postgres://h/db?sslmode=disable', overridden: 'disable' },
    { variable: 'PGSSLROOTCERT', value: '/env/ca.pem', read: (s) => s.ssl.rootCert, expected: '/env/ca.pem', url: 'postgres://h/db?sslrootcert=/url/ca.pem', overridden: '/url/ca.pem' },
    { variable: 'PGSSLCERT', value: '/env/c.crt', read: (s) => s.ssl.cert, expected: '/env/c.crt', url: 'postgres://h/db?sslcert=/url/c.crt', overridden: '/url/c.crt' },
    { variable: 'PGSSLKEY', value: '/env/c.key', read: (s) => s.ssl.key, expected: '/env/c.key', url: 'postgres://h/db?sslkey=/url/c.key', overridden: '/url/c.key' },
    { variable: 'PGPASSFILE', value: '/env/pgpass', read: (s) => s.passfile, expected: '/env/pgpass', url: 'postgres://h/db?passfile=/url/pgpass', overridden: '/url/pgpass' },
    { variable: 'PGTARGETSESSIONATTRS', value: 'standby', read: (s) => s.targetSessionAttrs, expected: 'standby', url: 'postgres://h/db?target_session_attrs=any', overridden: 'any' },
  ];
  for (const c of cases) {
    it(`${c.variable} alone, and under a URL that sets the same option`, () => {
      expect(c.read(resolve(undefined, { [c.variable]: c.value }))).toEqual(c.expected);
      expect(c.read(resolve(c.url, { [c.variable]: c.value }))).toEqual(c.overridden);
    });
  }

  it('defaults as libpq does: the OS user, a database named after the user, port 5432, sslmode prefer', () => {
    const s = resolve('postgres://someone@h');
    expect(s.database).toBe('someone');
    expect(s.hosts[0]?.port).toBe(5432);
    expect(s.ssl.mode).toBe('prefer');
    expect(s.ssl.rootCert).toBe(path.join(home, '.postgresql', 'root.crt'));
  });

  it('names the variable that carries an unsupported value', () => {
    expect(errorOf(() => resolve(undefined, { PGSSLMODE: 'bogus' })).message).toMatch(/^sslmode "bogus" \(in PGSSLMODE\)/);
  });
});

describe('the service file', () => {
  it('reads PGSERVICE from PGSERVICEFILE, under the URL and over the variables', async () => {
    const file = path.join(home, 'services.conf');
    await writeFile(file, '# services\n[analytics]\nhost=svc-host\nport=6432\ndbname=svc_db\nsslmode=require\n\n[other]\nhost=nope\n');
    const env = { PGSERVICEFILE: file, PGSERVICE: 'analytics', PGHOST: 'env-host', PGUSER: 'env-user' };
    const alone = resolve(undefined, env);
    expect(alone.hosts).toEqual([{ host: 'svc-host', port: 6432 }]);
    expect(alone.database).toBe('svc_db');
    expect(alone.ssl.mode).toBe('require');
    expect(alone.user).toBe('env-user');
    const underUrl = resolve('postgres://url-host/url_db', env);
    expect(underUrl.hosts).toEqual([{ host: 'url-host', port: 6432 }]);
    expect(underUrl.database).toBe('url_db');
    expect(resolve(`service=other`, env).hosts[0]?.host).toBe('nope');
  });

  it('falls back to ~/.pg_service.conf and then PGSYSCONFDIR/pg_service.conf', async () => {
    await writeFile(path.join(home, '.pg_service.conf'), '[mine]\nhost=from-home\n');
    const sysconf = await mkdtemp(path.join(tmpdir(), 'pgwarden-sysconf-'));
    try {
      await writeFile(path.join(sysconf, 'pg_service.conf'), '[shared]\nhost=from-system\n');
      expect(resolve(undefined, { PGSERVICE: 'mine', PGSYSCONFDIR: sysconf }).hosts[0]?.host).toBe('from-home');
      expect(resolve(undefined, { PGSERVICE: 'shared', PGSYSCONFDIR: sysconf }).hosts[0]?.host).toBe('from-system');
    } finally {
      await rm(sysconf, { recursive: true, force: true });
    }
  });

  it('says in one line when the service is not defined anywhere', () => {
    const error = errorOf(() => resolve(undefined, { PGSERVICE: 'missing', PGSERVICEFILE: path.join(home, 'none.conf'), PGSYSCONFDIR: home }));
    expect(error.message).toBe('definition of service "missing" not found');
    expect(error.hint).toContain('[missing]');
  });
});

describe('the password file', () => {
  it('matches host, port, database and user with * wildcards and escaped colons, first line wins', () => {
    const text = ['# comment', 'other:5432:*:*:nope', 'db\\:1:5432:app:u:first', 'db\\:1:*:*:u:second', '*:*:*:*:any\\:thing'].join('\n');
    expect(passwordFromText(text, { host: 'db:1', port: '5432', database: 'app', user: 'u' })).toBe('first');
    expect(passwordFromText(text, { host: 'db:1', port: '6000', database: 'x', user: 'u' })).toBe('second');
    expect(passwordFromText(text, { host: 'else', port: '1', database: 'x', user: 'y' })).toBe('any:thing');
  });

  it('is ignored, as by libpq, when others can read it', async () => {
    const file = path.join(home, 'open-pgpass');
    await writeFile(file, '*:*:*:*:pw\n');
    await chmod(file, 0o644);
    const { passwordFromFile } = await import('../../engine/connection/pgpass.ts');
    expect(passwordFromFile(file, { host: 'h', port: '1', database: 'd', user: 'u' })).toMatchObject({ kind: 'ignored' });
    await chmod(file, 0o600);
    expect(passwordFromFile(file, { host: 'h', port: '1', database: 'd', user: 'u' })).toEqual({ kind: 'found', password: 'pw' });
  });
});

describe('redaction: a password is never printed, in any form', () => {
  const cases: readonly [string, string][] = [
    ['cannot reach postgres://app:hunter2@db:5432/app', 'cannot reach postgres://app:***@db:5432/app'],
    ['cannot reach postgres://:hunter2@db/app', 'cannot reach postgres://:***@db/app'],
    ['cannot reach postgresql://app:hun/ter@2@h1,h2/app now', 'cannot reach postgresql://app:***@h1,h2/app now'],
    ["bad conninfo host=db password=hunter2 user=u", 'bad conninfo host=db password=*** user=u'],
    ["bad conninfo password = 'hunter 2' user=u", 'bad conninfo password = *** user=u'],
    ['postgres://u@db/app?password=hunter2&sslmode=require', 'postgres://u@db/app?password=***&sslmode=require'],
    ['env PGPASSWORD=hunter2 set', 'env PGPASSWORD=*** set'],
    ['sslpassword=hunter2', 'sslpassword=***'],
  ];
  for (const [input, expected] of cases) {
    it(`redacts ${JSON.stringify(input.replace(/hun\S*/u, '…'))}`, () => {
      const out = redact(input);
      expect(out).toBe(expected);
      expect(out).not.toMatch(/hunter|hun\/ter|ter@2/u);
    });
  }

  it('redacts a known password wherever a message quotes it', () => {
    expect(redact('server said: bad token s3cr3t-value', ['s3cr3t-value'])).toBe('server said: bad token ***');
  });
});

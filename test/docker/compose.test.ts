/**
 * Structure of the Docker environment (docker-compose.yml, Dockerfile, docker/, .env.example).
 * No Docker engine is needed: the compose file is parsed with `yaml` and checked against what
 * `docker compose up` relies on (start order, health checks, volumes, files, variables, no secret).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const composeText = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
const compose: unknown = parse(composeText);

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dict(value: unknown, what: string): Dict {
  if (!isDict(value)) throw new Error(`${what} is not a mapping`);
  return value;
}

function strings(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw new Error(`${what} is not a list of strings`);
  }
  return value;
}

const services = dict(dict(compose, 'docker-compose.yml').services, 'services');
const serviceNames = ['primary', 'standby', 'pgbouncer', 'pgwarden'] as const;

function service(name: string): Dict {
  return dict(services[name], `service ${name}`);
}

/** Host ports a service publishes, from "HOST:CONTAINER" strings or long-syntax entries. */
function publishedPorts(name: string): number[] {
  const ports = service(name).ports;
  if (!Array.isArray(ports)) return [];
  return ports.map((entry: unknown) => {
    if (typeof entry === 'string') {
      const parts = entry.split('/')[0]?.split(':') ?? [];
      return Number(parts.length >= 2 ? parts[parts.length - 2] : Number.NaN);
    }
    return Number(dict(entry, `${name} port`).published);
  });
}

/** depends_on as { service: condition }. */
function dependsOn(name: string): Record<string, string> {
  const raw = service(name).depends_on;
  if (raw === undefined) return {};
  const out: Record<string, string> = {};
  for (const [dep, spec] of Object.entries(dict(raw, `${name}.depends_on`))) {
    out[dep] = String(dict(spec, `${name}.depends_on.${dep}`).condition);
  }
  return out;
}

/** A service's volume entries as [source, target] (short syntax). */
function mounts(name: string): Array<[string, string]> {
  const raw = service(name).volumes;
  if (raw === undefined) return [];
  return strings(raw, `${name}.volumes`).map((entry) => {
    const [source = '', target = ''] = entry.split(':');
    return [source, target];
  });
}

const isBindMount = (source: string): boolean => source.startsWith('.') || source.startsWith('/');

/** postgres settings passed as `-c name=value` pairs in a command list. */
function settings(name: string): Map<string, string> {
  const command = strings(service(name).command, `${name}.command`);
  const out = new Map<string, string>();
  command.forEach((arg, i) => {
    if (arg !== '-c') return;
    const [key = '', value = ''] = (command[i + 1] ?? '').split('=');
    out.set(key, value);
  });
  return out;
}

/** Every ${VAR} the compose file interpolates in its values ("$$" is compose's escape for "$"). */
function interpolatedVariables(values: string[]): Set<string> {
  const names = new Set<string>();
  for (const value of values) {
    for (const match of value.replaceAll('$$', '').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}/g)) {
      if (match[1] !== undefined) names.add(match[1]);
    }
  }
  return names;
}

/** Every scalar of a parsed YAML document with the key path leading to it. */
function scalars(value: unknown, path: string[] = []): Array<{ path: string[]; value: string }> {
  if (Array.isArray(value)) return value.flatMap((item, i) => scalars(item, [...path, String(i)]));
  if (isDict(value)) return Object.entries(value).flatMap(([key, item]) => scalars(item, [...path, key]));
  if (typeof value === 'string' || typeof value === 'number') return [{ path, value: String(value) }];
  return [];
}

/** `${VAR}` or `${VAR:?message}`: a reference whose value can only come from the environment. */
const PURE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$/;

function envExample(): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of readFileSync(join(root, '.env.example'), 'utf8').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined) vars.set(match[1], match[2] ?? '');
  }
  return vars;
}

describe('docker-compose.yml', () => {
  it('defines the primary, the standby, PgBouncer and pgwarden', () => {
    expect(Object.keys(services).sort()).toEqual([...serviceNames].sort());
  });

  it('runs PostgreSQL 16 from the official image on the primary and the standby', () => {
    expect(service('primary').image).toBe('postgres:16');
    expect(service('standby').image).toBe('postgres:16');
    expect(String(service('pgbouncer').image)).toMatch(/^edoburu\/pgbouncer:\d+\.\d+\.\d+/);
  });

  it('publishes 5432 for the primary, 5433 for the standby, 6432 for PgBouncer and 3000 for pgwarden', () => {
    expect(publishedPorts('primary')).toEqual([5432]);
    expect(publishedPorts('standby')).toEqual([5433]);
    expect(publishedPorts('pgbouncer')).toEqual([6432]);
    expect(publishedPorts('pgwarden')).toEqual([3000]);
  });

  it('gives every service a health check', () => {
    for (const name of serviceNames) {
      const healthcheck = dict(service(name).healthcheck, `${name}.healthcheck`);
      const test = strings(healthcheck.test, `${name}.healthcheck.test`);
      expect(test[0], name).toMatch(/^CMD(-SHELL)?$/);
      expect(test.length, name).toBeGreaterThan(1);
    }
  });

  it('checks the databases with pg_isready over TCP, and the standby also for being in recovery', () => {
    for (const name of ['primary', 'standby', 'pgbouncer']) {
      const test = strings(dict(service(name).healthcheck, name).test, name).join(' ');
      expect(test, name).toMatch(/pg_isready .*-h 127\.0\.0\.1/);
    }
    expect(strings(dict(service('standby').healthcheck, 'standby').test, 'standby').join(' ')).toContain(
      'pg_is_in_recovery()',
    );
  });

  it('starts the standby and PgBouncer after a healthy primary, and pgwarden after all of them', () => {
    expect(dependsOn('primary')).toEqual({});
    expect(dependsOn('standby')).toEqual({ primary: 'service_healthy' });
    expect(dependsOn('pgbouncer')).toEqual({ primary: 'service_healthy' });
    expect(dependsOn('pgwarden')).toEqual({
      primary: 'service_healthy',
      standby: 'service_healthy',
      pgbouncer: 'service_healthy',
    });
  });

  it('keeps the data of both servers in named volumes that are declared', () => {
    const declared = Object.keys(dict(dict(compose, 'compose').volumes, 'volumes'));
    const named = serviceNames.flatMap((name) => mounts(name).filter(([source]) => !isBindMount(source)));
    expect(named.length).toBeGreaterThan(0);
    for (const [source] of named) expect(declared).toContain(source);

    const dataVolume = (name: string): string | undefined =>
      mounts(name).find(([, target]) => target === '/var/lib/postgresql/data')?.[0];
    expect(dataVolume('primary')).toBe('primary-data');
    expect(dataVolume('standby')).toBe('standby-data');
  });

  it('configures the primary for streaming replication and pg_stat_statements', () => {
    const primary = settings('primary');
    expect(primary.get('wal_level')).toBe('replica');
    expect(primary.get('shared_preload_libraries')).toBe('pg_stat_statements');
    expect(Number(primary.get('max_wal_senders'))).toBeGreaterThan(0);
    expect(Number(primary.get('max_replication_slots'))).toBeGreaterThan(0);
    expect(primary.get('hot_standby')).toBe('on');
    expect(mounts('primary').some(([, target]) => target.startsWith('/docker-entrypoint-initdb.d/'))).toBe(true);
  });

  it('starts the standby with the same server settings as the primary, which a hot standby requires', () => {
    expect(settings('standby')).toEqual(settings('primary'));
  });

  it('clones the standby from the primary with pg_basebackup onto a physical replication slot', () => {
    const entrypoint = strings(service('standby').entrypoint, 'standby.entrypoint');
    const script = entrypoint.find((arg) => arg.endsWith('.sh')) ?? '';
    const [source] = mounts('standby').find(([, target]) => target === script) ?? [];
    expect(source).toBeDefined();
    const text = readFileSync(join(root, source ?? ''), 'utf8');
    expect(text).toMatch(/pg_basebackup/);
    expect(text).toMatch(/--write-recovery-conf/);
    expect(text).toMatch(/--slot=/);
    expect(text).toMatch(/pg_isready/);

    const primaryEnv = dict(service('primary').environment, 'primary.environment');
    const standbyEnv = dict(service('standby').environment, 'standby.environment');
    expect(standbyEnv.REPLICATION_SLOT).toBe(primaryEnv.REPLICATION_SLOT);
    expect(standbyEnv.PRIMARY_HOST).toBe('primary');

    const init = mounts('primary').find(([, target]) => target.startsWith('/docker-entrypoint-initdb.d/'));
    const initText = readFileSync(join(root, init?.[0] ?? ''), 'utf8');
    expect(initText).toMatch(/WITH REPLICATION LOGIN/);
    expect(initText).toMatch(/pg_create_physical_replication_slot/);
    expect(initText).toMatch(/host replication .* samenet scram-sha-256/);
  });

  it('pools connections to the primary in transaction mode on port 6432', () => {
    const [ini] = mounts('pgbouncer').find(([, target]) => target === '/etc/pgbouncer/pgbouncer.ini') ?? [];
    const text = readFileSync(join(root, ini ?? ''), 'utf8');
    expect(text).toMatch(/^pool_mode = transaction$/m);
    expect(text).toMatch(/^listen_port = 6432$/m);
    expect(text).toMatch(/^\* = host=primary port=5432$/m);
    expect(text).toMatch(/^auth_type = scram-sha-256$/m);
  });

  it('builds pgwarden from the Dockerfile and runs `pgwarden serve` on 0.0.0.0:3000 with both URLs from the environment', () => {
    const pgwarden = service('pgwarden');
    const build = dict(pgwarden.build, 'pgwarden.build');
    expect(existsSync(join(root, String(build.context), String(build.dockerfile)))).toBe(true);
    expect(strings(pgwarden.command, 'pgwarden.command')).toEqual([
      'node',
      'bin/pgwarden.js',
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '3000',
    ]);
    const env = dict(pgwarden.environment, 'pgwarden.environment');
    expect(String(env.DATABASE_URL)).toMatch(/@primary:5432\//);
    expect(String(env.REPLICA_URL)).toMatch(/@standby:5432\//);
  });

  it('contains no password: every password-like value and URL credential is a ${VAR} reference', () => {
    const secretKey = /PASSWORD|PASSWD|SECRET|TOKEN/i;
    const checked: string[] = [];
    for (const { path, value } of scalars(compose)) {
      const key = path[path.length - 1] ?? '';
      if (secretKey.test(key)) {
        expect(value, path.join('.')).toMatch(PURE_REFERENCE);
        checked.push(key);
      }
      // URL credentials: mask the ${...} references first (their messages may hold ':' or spaces)
      const refs: string[] = [];
      const masked = value.replaceAll(/\$\{[^}]*\}/g, (ref) => `\u0001${refs.push(ref) - 1}\u0001`);
      for (const match of masked.matchAll(/:\/\/[^:@/\s]+:([^@\s]+)@/g)) {
        const ref = /^\u0001(\d+)\u0001$/.exec(match[1] ?? '');
        expect(ref, `${path.join('.')} has a literal password`).not.toBeNull();
        expect(refs[Number(ref?.[1])], path.join('.')).toMatch(PURE_REFERENCE);
        checked.push(path.join('.'));
      }
      // also the KEY=value list syntax, should anyone switch to it
      const listed = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(value);
      if (listed?.[1] !== undefined && secretKey.test(listed[1])) expect(listed[2]).toMatch(PURE_REFERENCE);
    }
    expect(checked).toContain('POSTGRES_PASSWORD');
    expect(checked).toContain('REPLICATION_PASSWORD');
    expect(checked).toContain('services.pgwarden.environment.DATABASE_URL');
  });

  it('references only files that exist: scripts, configuration and the Dockerfile', () => {
    const referenced = serviceNames.flatMap((name) =>
      mounts(name)
        .filter(([source]) => isBindMount(source))
        .map(([source]) => source),
    );
    expect(referenced.length).toBeGreaterThanOrEqual(4);
    for (const file of referenced) expect(existsSync(join(root, file)), file).toBe(true);
    expect(existsSync(join(root, 'Dockerfile'))).toBe(true);
  });

  it('runs only entrypoint scripts that are mounted into the container', () => {
    for (const name of serviceNames) {
      const entrypoint = service(name).entrypoint;
      if (entrypoint === undefined) continue;
      const script = strings(entrypoint, `${name}.entrypoint`).find((arg) => arg.startsWith('/pgwarden/'));
      expect(script, name).toBeDefined();
      expect(mounts(name).map(([, target]) => target), name).toContain(script);
    }
  });

  it('uses only variables that .env.example defines, each with a non-empty placeholder', () => {
    const defined = envExample();
    const used = interpolatedVariables(scalars(compose).map(({ value }) => value));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) {
      expect(defined.has(name), `${name} is missing from .env.example`).toBe(true);
      expect(defined.get(name), name).not.toBe('');
    }
  });

  it('interpolates nothing but ${VAR} references (no bare $VAR that compose would read from the host)', () => {
    for (const { path, value } of scalars(compose)) {
      const unescaped = value.replaceAll('$$', '');
      expect(unescaped.replaceAll(/\$\{[^}]*\}/g, ''), path.join('.')).not.toContain('$');
    }
  });
});

describe('the files next to docker-compose.yml', () => {
  it('has shell scripts that bash and sh can parse', () => {
    for (const script of ['docker/primary-init.sh', 'docker/standby-entrypoint.sh']) {
      expect(() => execFileSync('bash', ['-n', join(root, script)])).not.toThrow();
    }
    expect(() => execFileSync('sh', ['-n', join(root, 'docker/pgbouncer-entrypoint.sh')])).not.toThrow();
  });

  it('keeps secrets out of the PgBouncer configuration', () => {
    const ini = readFileSync(join(root, 'docker/pgbouncer.ini'), 'utf8');
    expect(ini).not.toMatch(/password\s*=/i);
  });

  it('builds the image from node:22 (LTS) with npm ci and npm run build', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:22\S* AS build$/m);
    expect(dockerfile).toMatch(/^FROM node:22\S* AS runtime$/m);
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/^CMD \["node", "bin\/pgwarden.js", "serve", "--host", "0.0.0.0", "--port", "3000"\]$/m);
  });

  it('leaves node_modules, dist, .pgwarden and .env out of the build context', () => {
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim());
    for (const entry of ['node_modules', 'dist', '.pgwarden', '.env']) expect(ignored).toContain(entry);
  });

  it('tells the user to create .env from .env.example', () => {
    expect(readFileSync(join(root, '.env.example'), 'utf8')).toContain('cp .env.example .env');
    expect(composeText).toContain('cp .env.example .env');
  });
});

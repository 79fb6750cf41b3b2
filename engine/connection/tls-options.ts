import { existsSync, readFileSync } from 'node:fs';
import { checkServerIdentity, type ConnectionOptions as NodeTlsOptions, type PeerCertificate } from 'node:tls';
import { ConnectionError } from './connection-error.ts';
import type { HostTarget, SslMode, TlsSettings } from './connection-settings.ts';

/** One way of talking to one host: in the clear, or over TLS with these Node options. */
export type Transport = { readonly kind: 'plain' } | { readonly kind: 'tls'; readonly options: NodeTlsOptions; readonly verifies: 'nothing' | 'chain' | 'chain-and-host' };

/**
 * The attempts libpq makes against one host for an sslmode, in order: `allow` tries in the clear first,
 * `prefer` TLS first; a Unix socket never uses TLS (libpq ignores sslmode there).
 */
export function transportOrder(mode: SslMode, target: HostTarget): readonly ('plain' | 'tls')[] {
  if (target.host.startsWith('/')) return ['plain'];
  switch (mode) {
    case 'disable':
      return ['plain'];
    case 'allow':
      return ['plain', 'tls'];
    case 'prefer':
      return ['tls', 'plain'];
    default:
      return ['tls'];
  }
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConnectionError(`could not read ${what} "${file}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/**
 * Node TLS options with libpq's meanings. node-postgres's own sslmode handling treats `require` as
 * `verify-full` (and warns about it); these options are passed explicitly instead, so the driver never
 * sees an sslmode.
 *
 * - A root certificate file (given, or `~/.postgresql/root.crt` when it exists) makes every mode check the
 *   chain against it, `require` and `prefer` included, as libpq does for backwards compatibility.
 * - `verify-ca` and `verify-full` without one are an error, as in libpq; `sslrootcert=system` uses the
 *   TLS library's trusted roots (Node's).
 * - Only `verify-full` checks the host name, against `host` (not `hostaddr`).
 * - A client certificate is sent when its file exists (`~/.postgresql/postgresql.crt` by default).
 */
export function tlsOptions(ssl: TlsSettings, target: HostTarget): Transport & { kind: 'tls' } {
  const options: NodeTlsOptions & { minVersion?: string; maxVersion?: string } = {
    ...(ssl.minVersion === undefined ? {} : { minVersion: ssl.minVersion }),
    ...(ssl.maxVersion === undefined ? {} : { maxVersion: ssl.maxVersion }),
  };
  const system = ssl.rootCert === 'system';
  const rootFile = !system && existsSync(ssl.rootCert);
  const verifyMode = ssl.mode === 'verify-ca' || ssl.mode === 'verify-full';
  if (verifyMode && !system && !rootFile) {
    throw new ConnectionError(
      `root certificate file "${ssl.rootCert}" does not exist (sslmode=${ssl.mode})`,
      'give the CA bundle that signed the server certificate with sslrootcert=FILE (your provider publishes one, see docs/managed-databases.md), use sslrootcert=system for a publicly trusted certificate, or sslmode=require to encrypt without verifying',
    );
  }
  if (rootFile) options.ca = readPem(ssl.rootCert, 'root certificate file');
  const verifies = system || rootFile ? (ssl.mode === 'verify-full' ? 'chain-and-host' : 'chain') : 'nothing';
  options.rejectUnauthorized = verifies !== 'nothing';
  const hostName = target.host;
  options.checkServerIdentity =
    verifies === 'chain-and-host' ? (_servername: string, cert: PeerCertificate) => checkServerIdentity(hostName, cert) : () => undefined;
  if (existsSync(ssl.cert)) {
    options.cert = readPem(ssl.cert, 'certificate file');
    if (!existsSync(ssl.key)) throw new ConnectionError(`certificate present, but not private key file "${ssl.key}"`, 'give it with sslkey=FILE or PGSSLKEY');
    options.key = readPem(ssl.key, 'private key file');
    if (ssl.password !== undefined) options.passphrase = ssl.password;
  }
  return { kind: 'tls', options, verifies };
}

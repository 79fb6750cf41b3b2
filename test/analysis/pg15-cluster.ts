import { startServer, type ThrowawayServer } from '../support/throwaway-server.ts';

/**
 * PostgreSQL 15 from Debian's packages (postgresql-15, postgresql-15-hypopg; `.ci/run` installs them),
 * for the advisor's hypopg path and the pre-16 EXPLAIN path: the embedded server is 16 and ships no hypopg.
 */
export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export type Pg15Cluster = ThrowawayServer;

export function startPg15(): Promise<Pg15Cluster> {
  return startServer({ bin: PG15_BIN, installHint: '.ci/run installs postgresql-15 and postgresql-15-hypopg (apt-get, as root)' });
}

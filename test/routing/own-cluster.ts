import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { clusterDown, clusterStopNode, clusterUp } from '../../engine/cluster/embedded-cluster.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

/**
 * A primary + streaming standby of this test file's own, for faults the suite's shared cluster must
 * not see (stopping the standby, pausing replay, changing standby settings).
 */
export interface OwnCluster {
  readonly primaryUrl: string;
  readonly standbyUrl: string;
  stopStandby(): Promise<void>;
  /** Starts the standby again (clusterUp is idempotent: the primary keeps running). */
  startStandby(): Promise<void>;
  destroy(): Promise<void>;
}

export async function ownCluster(): Promise<OwnCluster> {
  const baseDir = await mkdtemp(path.join(tmpdir(), 'pgwarden-routing-'));
  // mkdtemp makes it 0700; the postgres OS user (tests run as root) must reach it.
  await chmod(baseDir, 0o755);
  const options = {
    baseDir,
    primaryPort: await freePort(),
    standbyPort: await freePort(),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  };
  const urls = await clusterUp(options);
  return {
    ...urls,
    stopStandby: () => clusterStopNode({ baseDir, role: 'standby' }),
    startStandby: async () => {
      await clusterUp(options);
    },
    destroy: async () => {
      await clusterDown({ baseDir, destroy: true });
      await rm(baseDir, { recursive: true, force: true });
    },
  };
}

export async function sql<R extends pg.QueryResultRow = Record<string, unknown>>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

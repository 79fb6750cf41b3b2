import { mkdtemp, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { clusterDown, clusterUp } from '../../engine/cluster/embedded-cluster.ts';
import { dockerAvailable, startDockerPostgres } from './docker-cluster.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    primaryUrl: string;
    standbyUrl: string;
    clusterDir: string;
    /** Where tests make their temporary folders; removed with everything in it when the run ends. */
    scratchDir: string;
  }
}

/**
 * One embedded primary + streaming standby for the whole run, on free ports, in a throwaway
 * directory; or the server named by PGWARDEN_TEST_DATABASE_URL (then there is no standby of ours).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'pgwarden-scratch-'));
  // The postgres OS user (tests run as root) reads policy and data folders made in it.
  await chmod(scratch, 0o755);
  project.provide('scratchDir', scratch);
  const removeScratch = () => rm(scratch, { recursive: true, force: true });
  // A setup that fails has no teardown: what it made is removed here.
  const teardown = await setupServer(project).catch(async (error: unknown) => {
    await removeScratch();
    throw error;
  });
  return async () => {
    await teardown();
    await removeScratch();
  };
}

async function setupServer(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env['PGWARDEN_TEST_DATABASE_URL'];
  if (external) {
    project.provide('primaryUrl', external);
    project.provide('standbyUrl', process.env['PGWARDEN_TEST_STANDBY_URL'] ?? '');
    project.provide('clusterDir', '');
    return async () => undefined;
  }
  // PGWARDEN_TEST_DOCKER=1 with a Docker engine: PostgreSQL 16 in a container (no standby of ours).
  if (await dockerAvailable()) {
    const docker = await startDockerPostgres();
    project.provide('primaryUrl', docker.url);
    project.provide('standbyUrl', '');
    project.provide('clusterDir', '');
    return () => docker.stop();
  }
  // A free port can be taken by another process between the probe and the server's start (a busy
  // machine runs several suites at once): a fresh directory and fresh ports, a few times.
  let attempt = 0;
  for (;;) {
    attempt += 1;
    const baseDir = await mkdtemp(path.join(tmpdir(), 'pgwarden-test-'));
    try {
      return await startCluster(project, baseDir);
    } catch (error) {
      await clusterDown({ baseDir }).catch(() => undefined);
      await rm(baseDir, { recursive: true, force: true });
      if (attempt >= 3 || !/already in use/.test((error as Error).message)) throw error;
    }
  }
}

async function startCluster(project: TestProject, baseDir: string): Promise<() => Promise<void>> {
  // mkdtemp makes the directory 0700; the postgres OS user (when tests run as root) must reach it.
  await chmod(baseDir, 0o755);
  const [primaryPort, standbyPort] = [await freePort(), await freePort()];
  const urls = await clusterUp({
    baseDir,
    primaryPort,
    standbyPort,
    // Durability buys nothing in a throwaway test cluster and costs CI minutes.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  project.provide('primaryUrl', urls.primaryUrl);
  project.provide('standbyUrl', urls.standbyUrl);
  project.provide('clusterDir', baseDir);
  return async () => {
    await clusterDown({ baseDir });
    await rm(baseDir, { recursive: true, force: true });
  };
}

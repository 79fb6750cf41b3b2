/**
 * The Docker path of the test harness: a throwaway PostgreSQL 16 in a container (testcontainers),
 * used only when PGWARDEN_TEST_DOCKER=1 and a Docker engine answers. Everywhere else the suite
 * runs on the embedded cluster, so `dockerAvailable()` returning false is the normal fallback.
 *
 * testcontainers is loaded lazily: nothing of it is imported unless PGWARDEN_TEST_DOCKER=1.
 * (testcontainers is pinned to 11.x: 12 needs Node >= 22.22. Should it fail to load, the probe
 * reports that and returns false instead of throwing.)
 */

/** Outcome of the Docker probe, with the reason when Docker is not used. */
export interface DockerProbe {
  available: boolean;
  reason: string;
}

export interface DockerPostgres {
  /** postgres://user:password@host:port/db of the container's server. */
  url: string;
  stop(): Promise<void>;
}

/** How long the engine may take to answer before the probe gives up. */
const PROBE_TIMEOUT_MS = 3_000;

const POSTGRES_IMAGE = 'postgres:16';

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Resolves to `undefined` after `ms`, unless `work` settles first; the timer never holds the process open. */
async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/**
 * Whether the Docker path is wanted and usable, and why not when it is not. Never throws.
 * Wanted: PGWARDEN_TEST_DOCKER=1. Usable: testcontainers loads and its own runtime detection
 * (`getContainerRuntimeClient()`, which asks the engine for `docker info`) answers within a few seconds.
 */
export async function probeDocker(env: NodeJS.ProcessEnv = process.env): Promise<DockerProbe> {
  if (env.PGWARDEN_TEST_DOCKER !== '1') {
    return { available: false, reason: 'PGWARDEN_TEST_DOCKER is not 1' };
  }

  let getContainerRuntimeClient: typeof import('testcontainers').getContainerRuntimeClient;
  try {
    ({ getContainerRuntimeClient } = await import('testcontainers'));
  } catch (error) {
    return {
      available: false,
      reason: `testcontainers could not be loaded on Node ${process.versions.node}: ${describe(error)}`,
    };
  }

  // The detection keeps running after a timeout; its late rejection must not become unhandled.
  const detection = getContainerRuntimeClient().then(
    (client) => ({ ok: true as const, client }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const result = await withTimeout(detection, PROBE_TIMEOUT_MS);
  if (result === undefined) {
    return { available: false, reason: `no Docker engine answered within ${PROBE_TIMEOUT_MS} ms` };
  }
  if (!result.ok) {
    return { available: false, reason: `no Docker engine: ${describe(result.error)}` };
  }
  const runtime = result.client.info.containerRuntime;
  return { available: true, reason: `Docker ${runtime.serverVersion} at ${runtime.host}` };
}

/** True only when PGWARDEN_TEST_DOCKER=1 and a Docker engine answers. Never throws. */
export async function dockerAvailable(): Promise<boolean> {
  return (await probeDocker()).available;
}

/**
 * Starts PostgreSQL 16 in a container with pg_stat_statements preloaded and returns its URL.
 * Call only after `dockerAvailable()` returned true; `stop()` removes the container.
 */
export async function startDockerPostgres(): Promise<DockerPostgres> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer(POSTGRES_IMAGE)
    .withCommand(['postgres', '-c', 'shared_preload_libraries=pg_stat_statements'])
    .start();
  return {
    url: container.getConnectionUri(),
    async stop() {
      await container.stop();
    },
  };
}

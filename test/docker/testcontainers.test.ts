import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerAvailable, probeDocker } from '../support/docker-cluster.ts';

// Whether this machine could have a Docker engine at all: then "no engine" is not a given, and
// the fallback test below cannot know the right answer.
const engineMayExist = Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');

describe('the Docker path of the test harness', () => {
  const saved = process.env.PGWARDEN_TEST_DOCKER;

  afterEach(() => {
    if (saved === undefined) delete process.env.PGWARDEN_TEST_DOCKER;
    else process.env.PGWARDEN_TEST_DOCKER = saved;
  });

  it('is not used when PGWARDEN_TEST_DOCKER is unset, and says so at once', async () => {
    delete process.env.PGWARDEN_TEST_DOCKER;
    const started = performance.now();

    expect(await dockerAvailable()).toBe(false);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect((await probeDocker()).reason).toMatch(/PGWARDEN_TEST_DOCKER/);
  });

  it.skipIf(engineMayExist)(
    'falls back to false within 5 seconds when PGWARDEN_TEST_DOCKER=1 but no Docker engine answers',
    async () => {
      process.env.PGWARDEN_TEST_DOCKER = '1';
      const started = performance.now();

      const probe = await probeDocker();

      expect(probe.available).toBe(false);
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(probe.reason).not.toBe('');
      expect(await dockerAvailable()).toBe(false);
    },
    15_000,
  );
});

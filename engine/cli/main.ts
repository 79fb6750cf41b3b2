import { readFileSync } from 'node:fs';
import { closest } from '../policy/closest-word.ts';
import { ConnectionError } from '../connection/connection-error.ts';
import { pgwardenSchemaHint } from '../store/schema.ts';
import { CliError, redact, type Io } from './context.ts';
import { COMMON_OPTIONS, optionLines, parse, type OptionSpecs } from './option-spec.ts';

type Command = (args: readonly string[], io: Io) => Promise<number>;

/** A command's code and its options, loaded only when the command runs or its help is asked for. */
export interface LoadedCommand {
  readonly run: Command;
  readonly options: OptionSpecs;
}

export interface CommandEntry {
  /** One line, for `pgwarden --help`; the options are listed by `pgwarden <command> --help`. */
  readonly summary: string;
  readonly load: () => Promise<LoadedCommand>;
}

// Each command's modules are imported when it runs: `pgwarden --help` and `validate` must not pay for
// pg, the planner, Astro's build or the embedded server (issue 14: --help within 150 ms).
const COMMANDS: Record<string, CommandEntry> = {
  up: { summary: 'start the embedded PostgreSQL 16 primary and hot standby; prints their URLs', load: async () => { const m = await import('./commands/cluster.ts'); return { run: m.upCommand, options: m.upOptions }; } },
  down: { summary: 'stop the embedded cluster (--destroy deletes its data)', load: async () => { const m = await import('./commands/cluster.ts'); return { run: m.downCommand, options: m.downOptions }; } },
  status: { summary: 'show both servers, the standby state and its replay lag', load: async () => { const m = await import('./commands/cluster.ts'); return { run: m.statusCommand, options: m.statusOptions }; } },
  validate: { summary: 'check the policy files (no database needed)', load: async () => { const m = await import('./commands/validate.ts'); return { run: m.validateCommand, options: m.validateOptions }; } },
  import: { summary: 'write policy files for the indexes, partitioning and autovacuum settings the database already has', load: async () => { const m = await import('./commands/import.ts'); return { run: m.importCommand, options: m.importOptions }; } },
  plan: { summary: 'show what would change and why', load: async () => { const m = await import('./commands/plan.ts'); return { run: m.planCommand, options: m.planOptions }; } },
  apply: { summary: 'plan and apply online, or apply a saved plan', load: async () => { const m = await import('./commands/apply.ts'); return { run: m.applyCommand, options: m.applyOptions }; } },
  analyze: { summary: 'slow queries (pg_stat_statements) and plan findings, or one statement\'s plan', load: async () => { const m = await import('./commands/analyze.ts'); return { run: m.analyzeCommand, options: m.analyzeOptions }; } },
  advise: { summary: 'index advice for the workload, with evidence; --write adds it to the policy files', load: async () => { const m = await import('./commands/advise.ts'); return { run: m.adviseCommand, options: m.adviseOptions }; } },
  maintain: { summary: 'VACUUM (ANALYZE) what the vacuum policies say is due, worst first', load: async () => { const m = await import('./commands/maintain.ts'); return { run: m.maintainCommand, options: m.maintainOptions }; } },
  health: { summary: 'table health and bloat against each floor, then the live snapshot (latency, hit rates, connections, replica lag); exit 1 when a figure is red', load: async () => { const m = await import('./commands/health.ts'); return { run: m.healthCommand, options: m.healthOptions }; } },
  serve: { summary: 'the report site, live page, JSON API and /metrics on one port', load: async () => { const m = await import('./commands/serve.ts'); return { run: m.serveCommand, options: m.serveOptions }; } },
  report: { summary: 'build the static report site into a folder', load: async () => { const m = await import('./commands/report.ts'); return { run: m.reportCommand, options: m.reportOptions }; } },
  demo: { summary: 'the guided tour on the embedded cluster and the example data', load: async () => { const m = await import('./commands/demo.ts'); return { run: m.demoCommand, options: m.demoOptions }; } },
};

/** Environment variables pgwarden reads, for the help and the README. */
export const ENVIRONMENT: Readonly<Record<string, string>> = {
  DATABASE_URL: 'the database, when --database-url is not given (PG* variables are honoured too)',
  PGWARDEN_HOME: 'where `up` keeps the embedded cluster (default: ./.pgwarden)',
  PGWARDEN_ALLOW_DROP: 'true: the same as apply --allow-drop',
  NO_COLOR: 'non-empty: no colours; FORCE_COLOR=1 forces them',
  GITHUB_ACTIONS: 'true: policy errors are also printed as workflow annotations',
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  const envWidth = Math.max(...Object.keys(ENVIRONMENT).map((e) => e.length));
  return [
    'Usage: pgwarden <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options of every command:',
    ...optionLines(COMMON_OPTIONS),
    '',
    'Environment:',
    ...Object.entries(ENVIRONMENT).map(([name, text]) => `  ${name.padEnd(envWidth)}  ${text}`),
    '',
    '`pgwarden <command> --help` lists a command\'s options. `pgwarden --version` prints the version.',
    'Exit codes: 0 success, 1 error, 2 changes present (--detailed-exitcode), 3 saved plan is stale.',
    '',
  ].join('\n');
}

export function commandUsage(name: string, summary: string, options: OptionSpecs): string {
  const own = Object.keys(options).length === 0 ? ['  (none besides the common ones)'] : optionLines(options);
  return [`Usage: pgwarden ${name} [options]`, '', `  ${summary}`, '', 'Options:', ...own, '', 'Options of every command:', ...optionLines(COMMON_OPTIONS), ''].join('\n');
}

/** The package's version, read from package.json next to the code (engine/ in a checkout, dist/engine/ when built). */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const data = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (data.name === 'pgwarden' && typeof data.version === 'string') return data.version;
    } catch {
      // Not this level: try the next.
    }
  }
  return 'unknown';
}

/** Runs one CLI invocation and returns its exit code: 0 success, 1 error, 2 changes present (plan --detailed-exitcode). */
export async function run(argv: readonly string[], io: Io, commands: Record<string, CommandEntry> = COMMANDS): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    io.stdout(`pgwarden ${packageVersion()}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage());
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`pgwarden: unknown command "${name}"${suggestCommand(name, Object.keys(commands))}; run \`pgwarden --help\` for the list\n`);
    return 1;
  }
  const colorIo: Io = args.includes('--no-color') ? { ...io, color: false } : io;
  try {
    const loaded = await command.load();
    // Before the command runs: `pgwarden up --help` must not start a cluster.
    if (args.includes('--help') || args.includes('-h')) {
      io.stdout(commandUsage(name, command.summary, loaded.options));
      return 0;
    }
    // Every argument checked against the command's spec first, so a typo is named with the command.
    parse(args, loaded.options, name);
    return await loaded.run(args, colorIo);
  } catch (error) {
    if (error instanceof CliError) {
      if (!error.reported) io.stderr(`pgwarden: ${redact(error.message)}${error.hint ? `\n  hint: ${redact(error.hint)}` : ''}\n`);
      return error.exitCode;
    }
    if (error instanceof ConnectionError) {
      io.stderr(`pgwarden: ${redact(error.message)}${error.hint ? `\n  hint: ${redact(error.hint)}` : ''}\n`);
      return 1;
    }
    const message = redact(error instanceof Error ? error.message : String(error));
    const hint = pgwardenSchemaHint(error);
    io.stderr(`pgwarden: ${name} failed: ${message}\n${hint === undefined ? '' : `  hint: ${hint}\n`}`);
    if (args.includes('--debug') && error instanceof Error && error.stack) io.stderr(`${redact(error.stack)}\n`);
    return 1;
  }
}

function suggestCommand(given: string, names: readonly string[]): string {
  const match = closest(given, names) ?? names.find((n) => n.startsWith(given));
  return match === undefined ? '' : ` (did you mean "${match}"?)`;
}

export { COMMANDS };

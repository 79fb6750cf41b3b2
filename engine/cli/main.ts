import { analyzeCommand } from './commands/analyze.ts';
import { adviseCommand } from './commands/advise.ts';
import { applyCommand } from './commands/apply.ts';
import { downCommand, statusCommand, upCommand } from './commands/cluster.ts';
import { demoCommand } from './commands/demo.ts';
import { healthCommand } from './commands/health.ts';
import { maintainCommand } from './commands/maintain.ts';
import { planCommand } from './commands/plan.ts';
import { reportCommand } from './commands/report.ts';
import { serveCommand } from './commands/serve.ts';
import { validateCommand } from './commands/validate.ts';
import { CliError, redact, type Io } from './context.ts';

type Command = (args: readonly string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, { run?: Command; summary: string }> = {
  up: { run: upCommand, summary: 'start the embedded PostgreSQL 16 primary and hot standby; prints their URLs' },
  down: { run: downCommand, summary: 'stop the embedded cluster (--destroy deletes its data)' },
  status: { run: statusCommand, summary: 'show both servers, the standby state and its replay lag' },
  validate: { run: validateCommand, summary: 'check the policy files (no database needed)' },
  plan: { run: planCommand, summary: 'show what would change and why (--out, --format text|json|markdown, --detailed-exitcode)' },
  apply: { run: applyCommand, summary: 'plan and apply online (--auto-approve, --plan FILE, --allow-drop, --allow-restart, --lock-timeout 5s, --build-timeout 6h (0: none), --retries 5)' },
  analyze: { run: analyzeCommand, summary: 'slow queries (pg_stat_statements) and plan findings; --query SQL [--param V] explains one (--analyze, --since 5m)' },
  advise: { run: adviseCommand, summary: 'index advice for the workload, with evidence; --write adds it to the policy files (--since 5m, --max-indexes N, --workload FILE)' },
  maintain: { run: maintainCommand, summary: 'VACUUM (ANALYZE) what the vacuum policies say is due, worst first (--dry-run, --parallel N, --budget 10m, --every 5m)' },
  health: { run: healthCommand, summary: 'every table\'s health score and bloat, worst first, against its floor (--json, --all)' },
  serve: { run: serveCommand, summary: 'the report site, live page and JSON API on one port (--port 3000, --host 127.0.0.1, --standby NAME=URL)' },
  report: { run: reportCommand, summary: 'build the static report site into a folder (--out DIR, --plans FILE, --live-url URL, --base /path/)' },
  demo: { run: demoCommand, summary: 'the guided tour on the embedded cluster and the example data (--yes skips pauses)' },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}${c.run ? '' : ' (not available yet)'}`);
  return [
    'Usage: pgwarden <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options: --database-url URL (or DATABASE_URL, PG* variables), --policies DIR (default ./policies), --json, --debug',
    '',
  ].join('\n');
}

function commandUsage(name: string, summary: string): string {
  return [
    `Usage: pgwarden ${name} [options]`,
    '',
    `  ${summary}`,
    '',
    'Options of every command: --database-url URL (or DATABASE_URL, PG* variables), --policies DIR (default ./policies), --json, --debug',
    'Every option of every command: the CLI section of the README.',
    '',
  ].join('\n');
}

/** Runs one CLI invocation and returns its exit code: 0 success, 1 error, 2 changes present (plan --detailed-exitcode). */
export async function run(argv: readonly string[], io: Io, commands: Record<string, { run?: Command; summary: string }> = COMMANDS): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage());
    return name ? 0 : 1;
  }
  const command = commands[name];
  if (!command) {
    io.stderr(`pgwarden: unknown command "${name}"; run \`pgwarden --help\` for the list\n`);
    return 1;
  }
  if (!command.run) {
    io.stderr(`pgwarden: \`${name}\` is not available in this version yet\n`);
    return 1;
  }
  // Before the command runs: `pgwarden up --help` must not start a cluster.
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(commandUsage(name, command.summary));
    return 0;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof CliError) {
      if (!error.reported) io.stderr(`pgwarden: ${redact(error.message)}${error.hint ? `\n  hint: ${error.hint}` : ''}\n`);
      return error.exitCode;
    }
    const message = redact(error instanceof Error ? error.message : String(error));
    io.stderr(`pgwarden: ${name} failed: ${message}\n`);
    if (args.includes('--debug') && error instanceof Error && error.stack) io.stderr(`${redact(error.stack)}\n`);
    return 1;
  }
}

export { COMMANDS };

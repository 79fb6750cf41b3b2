import { existsSync } from 'node:fs';
import path from 'node:path';
import { readImport } from '../../import/read-import.ts';
import { ImportFileError, planImportWrites, unifiedDiff, writeImport } from '../../import/policy-file-merge.ts';
import { policySchemaId } from '../../policy/schema.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';

/** Where the database came from, for the provenance comment: never a password, never query parameters. */
export function describeSource(url: string | undefined, database: string, env: NodeJS.ProcessEnv): string {
  if (url !== undefined) {
    try {
      const u = new URL(url);
      u.password = '';
      u.search = '';
      return u.toString();
    } catch {
      return `database ${database}`;
    }
  }
  const host = env['PGHOST'] ? ` on ${env['PGHOST']}${env['PGPORT'] ? `:${env['PGPORT']}` : ''}` : '';
  return `database ${database}${host}`;
}

/** The schema modeline: the project's own copy when it has one (this repository, or pgwarden installed locally), else the published address. */
function modeline(policiesDir: string, cwd: string): string {
  const candidates = [path.join(cwd, 'schema', 'policy.schema.json'), path.join(cwd, 'node_modules', 'pgwarden', 'schema', 'policy.schema.json')];
  const local = candidates.find((file) => existsSync(file));
  const target = local === undefined ? policySchemaId : path.relative(policiesDir, local).split(path.sep).join('/');
  return `# yaml-language-server: $schema=${target}`;
}

function routingSkeleton(replicas: readonly string[], when: string): string {
  const envName = (name: string): string => `PGWARDEN_REPLICA_${name.toUpperCase().replace(/[^A-Z0-9]+/gu, '_')}_URL`;
  return [
    `# Streaming replicas the primary showed on ${when} (pg_stat_replication). To route reads to them,`,
    '# uncomment this document and export each url_env variable with the replica\'s URL where pgwarden runs.',
    '# routing:',
    '#   replicas:',
    ...replicas.map((name) => `#     - { name: ${JSON.stringify(name)}, url_env: ${envName(name)} }`),
    '#   reads: replica            # SELECTs go to a replica',
    '#   max_lag_ms: 250           # above this, reads fall back to the primary',
    '',
  ].join('\n');
}

export const importOptions = defineOptions({
  schema: { type: 'string', multiple: true, value: 'NAME', description: 'only this schema (repeatable); default: every user schema' },
  table: { type: 'string', multiple: true, value: 'GLOB', description: 'only tables whose schema.table matches (repeatable; * ? [..])' },
  'dry-run': { type: 'boolean', description: 'print the files it would write as a diff; write nothing' },
  prune: { type: 'boolean', description: 'remove declared indexes the database no longer has (reported otherwise)' },
});

export async function importCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, importOptions, 'import');
  const displayDir = values.policies ?? 'policies';
  const dir = path.resolve(io.cwd, displayDir);
  const connection = commandConnection(values['database-url'], io);
  const url = values['database-url'] ?? (io.env['DATABASE_URL'] || undefined);
  const now = new Date();
  const filter = { schemas: values.schema ?? [], tables: values.table ?? [] };
  const read = await withClient(connection, io, (client) => readImport(client, filter, now));
  const when = now.toISOString().replace(/\.\d+Z$/u, 'Z');
  const header = {
    modeline: modeline(dir, io.cwd),
    provenance: `Imported by pgwarden import on ${when} from ${describeSource(url, read.database, io.env)}; review it, then \`pgwarden plan\` proposes only adoptions.`,
  };
  // Only on a whole import: a `--table` run is about those tables.
  const whole = filter.schemas.length === 0 && filter.tables.length === 0;
  const extra = whole && read.replicas.length > 0 ? [{ file: 'routing.yaml', text: routingSkeleton(read.replicas, when) }] : [];
  let planned;
  try {
    planned = await planImportWrites(dir, displayDir, read.tables, { prune: values.prune === true, header, extra });
    if (!values['dry-run']) await writeImport(dir, displayDir, planned.writes);
  } catch (error) {
    if (error instanceof ImportFileError) throw new CliError(error.message);
    throw error;
  }
  const unexpressed = read.tables.flatMap((t) => t.unexpressed.map((message) => ({ table: `${t.schema}.${t.name}`, message })));
  const shown = (file: string): string => path.join(displayDir, file);
  if (values.json) {
    io.stdout(
      `${JSON.stringify(
        {
          database: read.database,
          dryRun: values['dry-run'] === true,
          roundTrips: read.roundTrips,
          files: planned.writes.map((w) => ({ file: shown(w.file), action: w.action })),
          tables: planned.tables.map((t) => ({ ...t, file: shown(t.file) })),
          unexpressed,
          replicas: read.replicas,
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  const out: string[] = [];
  if (values['dry-run']) for (const w of planned.writes) out.push(unifiedDiff(w.file, w.before, w.after));
  const created = planned.writes.filter((w) => w.action === 'create').length;
  const updated = planned.writes.filter((w) => w.action === 'update').length;
  const verb = values['dry-run'] ? 'would write' : 'wrote';
  out.push(`Imported ${read.tables.length} table(s) from database ${read.database}: ${verb} ${created} new file(s) and ${updated} updated file(s) in ${displayDir}/.`);
  for (const t of planned.tables) {
    if (t.added.length > 0 && planned.writes.some((w) => w.file === t.file && w.action === 'update')) out.push(`  ~ ${shown(t.file)}: ${t.table} gains ${t.added.join(', ')}`);
    for (const name of t.vanished) {
      out.push(`  ! ${shown(t.file)}: index ${name} of ${t.table} is declared but no longer in the database (${t.pruned ? 'removed: --prune' : 'kept; --prune removes it'})`);
    }
  }
  if (unexpressed.length > 0) {
    out.push('', 'Not expressible in the policy format (left as they are, noted in the files):');
    for (const u of unexpressed) out.push(`  - ${u.message}`);
  }
  if (read.replicas.length > 0 && extra.length > 0 && planned.writes.some((w) => w.file === 'routing.yaml')) {
    out.push('', `Replicas found: ${read.replicas.join(', ')}; ${shown('routing.yaml')} holds a commented routing: skeleton.`);
  }
  out.push('', values['dry-run'] ? 'Nothing was written (--dry-run).' : 'Next: review the files, commit them, then `pgwarden plan`: it proposes only adoptions; `pgwarden apply` records them.');
  io.stdout(`${out.join('\n')}\n`);
  return 0;
}

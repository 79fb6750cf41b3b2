import type { MaintainEvent, MaintainResult, MaintenancePlan, TaskResult, VacuumProgress } from './maintain.ts';
import { actionWords, maintenanceSql, type MaintenanceTask } from './maintenance-task.ts';

const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function tableName(task: Pick<MaintenanceTask, 'schema' | 'name'>): string {
  return `${task.schema}.${task.name}`;
}

/** `--dry-run`: the due tables, worst first, why, and the statement each would get. */
export function renderMaintenancePlan(plan: MaintenancePlan): string {
  const out: string[] = [];
  if (plan.tasks.length === 0) {
    out.push(`Nothing is due on ${plan.database}: the ${plan.governed} table(s) the vacuum policies govern are within their thresholds.`);
    return `${out.join('\n')}\n`;
  }
  out.push(`${plan.tasks.length} of ${plan.governed} governed table(s) on ${plan.database} are due, worst first (dry run: nothing was run):`, '');
  const skip = plan.serverVersion >= 160_000 && plan.tasks.filter((t) => t.action !== 'analyze').length > 1;
  for (const [i, task] of plan.tasks.entries()) {
    const health = task.before === null ? '' : `  health ${task.before.health.toFixed(2)}, ${count(task.before.deadTuples)} dead tuples`;
    out.push(`  [${i + 1}] ${actionWords(task.action)} ${tableName(task)}${health}`);
    for (const reason of task.reasons) out.push(`      why: ${reason}`);
    out.push(`      ${maintenanceSql(task, { skipDatabaseStats: skip && task.action !== 'analyze' })}`);
  }
  return `${out.join('\n')}\n`;
}

function figuresCell(result: TaskResult, pick: 'dead' | 'health'): string {
  const { before, after } = result;
  if (before === null) return '-';
  const show = (f: NonNullable<TaskResult['before']>): string => (pick === 'dead' ? count(f.deadTuples) : f.health.toFixed(2));
  return after === null ? `${show(before)} -> ?` : `${show(before)} -> ${show(after)}`;
}

const OUTCOME_WORDS: Readonly<Record<TaskResult['outcome'], string>> = {
  done: 'done',
  locked: 'skipped (locked)',
  denied: 'skipped (not permitted)',
  dropped: 'skipped (dropped)',
  failed: 'FAILED',
  cancelled: 'cancelled',
  'not-started': 'not started',
};

/** The summary: every due table's dead tuples and health before and after, its time and outcome. */
export function renderMaintainSummary(result: MaintainResult): string {
  const out: string[] = [];
  const done = result.results.filter((r) => r.outcome === 'done').length;
  const head = `maintain: ${result.results.length} table(s) due, ${done} done in ${seconds(result.ms)}`;
  out.push(`${head}${result.historyId === null ? '' : ` (history record ${result.historyId})`}`, '');
  const header = ['table', 'action', 'dead tuples', 'health', 'time', 'outcome'];
  const rows = result.results.map((r) => [
    tableName(r.task),
    actionWords(r.task.action),
    figuresCell(r, 'dead'),
    figuresCell(r, 'health'),
    r.outcome === 'not-started' ? '-' : seconds(r.ms),
    OUTCOME_WORDS[r.outcome],
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  out.push(line(header));
  for (const [i, row] of rows.entries()) {
    out.push(line(row));
    const message = result.results[i]?.message;
    if (message !== undefined) out.push(`      ${message}`);
  }
  if (result.budgetReached) out.push('', 'The --budget ran out: the tables not started are due on the next run.');
  if (result.outcome === 'interrupted') out.push('', 'Interrupted: the running VACUUM was cancelled; nothing half-done is left (PostgreSQL keeps the pages already cleaned).');
  return `${out.join('\n')}\n`;
}

/** A CI log gets a progress line for a table at most this often, unless what it says changes. */
export const CI_PROGRESS_EVERY_MS = 5000;

/**
 * What a CI progress line is about, leaving out what moves on every poll (the percentage, how long the
 * blocker's transaction has been open): a change of phase, or of who blocks the lock, is worth a line
 * at once; the same state again only every CI_PROGRESS_EVERY_MS.
 */
function progressState(p: VacuumProgress): string {
  return `${p.phase ?? 'waiting'}|${p.waitingFor.map((b) => b.pid).join(',')}`;
}

/**
 * Progress for people: one live line on a terminal, redrawn in place; in CI logs plain lines, one per
 * change of phase or blocker and otherwise at most every 5 s per table — a VACUUM waiting minutes for
 * its lock must not print a line per poll.
 */
export function maintainProgressPrinter(
  io: { readonly stdout: (text: string) => void; readonly isTTY: boolean },
  now: () => number = Date.now,
): (event: MaintainEvent) => void {
  const live = new Map<string, { task: MaintenanceTask; progress: VacuumProgress }>();
  const lastLine = new Map<string, { at: number; state: string }>();
  let barShown = false;
  const clearBar = (): void => {
    if (barShown) io.stdout('\r\u001b[K');
    barShown = false;
  };
  const line = (text: string): void => {
    clearBar();
    io.stdout(`${text}\n`);
  };
  const percentText = (p: VacuumProgress): string => (p.percent === null ? '' : ` ${p.percent.toFixed(0)}%`);
  const waiting = (p: VacuumProgress): string =>
    p.waitingFor.length === 0
      ? ''
      : ` — waiting for ${p.waitingFor.map((b) => `pid ${b.pid} (${b.state ?? '?'}, transaction open ${Math.round(b.transactionAgeS ?? 0)} s)`).join(', ')}`;
  const ciLineDue = (key: string, p: VacuumProgress): boolean => {
    const last = lastLine.get(key);
    const state = progressState(p);
    if (last !== undefined && last.state === state && now() - last.at < CI_PROGRESS_EVERY_MS) return false;
    lastLine.set(key, { at: now(), state });
    return true;
  };
  return (event) => {
    switch (event.type) {
      case 'task-start': {
        const health = event.task.before === null ? '' : ` (health ${event.task.before.health.toFixed(2)})`;
        line(`[${event.index + 1}/${event.total}] ${actionWords(event.task.action)} ${tableName(event.task)}${health}: ${event.task.reasons[0] ?? ''}`);
        return;
      }
      case 'progress': {
        const key = tableName(event.task);
        live.set(key, { task: event.task, progress: event.progress });
        const p = event.progress;
        if (io.isTTY) {
          const parts = [...live.values()].map(({ task, progress }) => {
            const width = 20;
            const filled = progress.percent === null ? 0 : Math.round((progress.percent / 100) * width);
            return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${percentText(progress)} ${tableName(task)} ${progress.phase ?? 'waiting for its lock'}${waiting(progress)}`;
          });
          io.stdout(`\r      ${parts.join(' | ')}\u001b[K`);
          barShown = true;
        } else if (ciLineDue(key, p)) {
          io.stdout(`      ${key}: ${p.phase ?? 'waiting for its lock'}${percentText(p)}${waiting(p)}\n`);
        }
        return;
      }
      case 'task-done': {
        live.delete(tableName(event.result.task));
        lastLine.delete(tableName(event.result.task));
        const r = event.result;
        line(`      ${tableName(r.task)}: ${OUTCOME_WORDS[r.outcome]} in ${seconds(r.ms)}${r.message === undefined ? '' : ` — ${r.message}`}`);
        return;
      }
      case 'note':
        line(`      ${event.message}`);
        return;
    }
  };
}

import type { ApplyEvent } from '../apply/apply.ts';
import { describeBlocker } from '../apply/progress.ts';
import { describeChange } from '../render/describe.ts';
import type { Io } from './context.ts';

/** Progress for people: a live bar on a terminal, plain lines in CI logs. */
export function progressPrinter(io: Io): (event: ApplyEvent) => void {
  let lastLine = '';
  let lastAt = 0;
  const line = (text: string): void => {
    if (io.isTTY && lastLine.startsWith('\r')) io.stdout('\n');
    lastLine = '';
    io.stdout(`${text}\n`);
  };
  return (event) => {
    switch (event.type) {
      case 'change-start':
        line(`[${event.index + 1}/${event.total}] ${event.change.glyph} ${describeChange(event.change)}`);
        return;
      case 'step':
        // A multi-statement step (one transaction) keeps its statements aligned.
        line(event.sql.replace(/^/gmu, '      '));
        return;
      case 'retry':
        line(`      lock not available (${event.reason}); retry ${event.attempt} in ${event.waitMs} ms`);
        return;
      case 'notice':
      case 'cleanup':
        line(`      ${event.message}`);
        return;
      case 'change-done':
        line(`      done in ${(event.ms / 1000).toFixed(1)} s`);
        return;
      case 'progress': {
        const p = event.progress;
        const pct = p.percent === null ? '' : ` ${p.percent.toFixed(0).padStart(3)}%`;
        const waiting = p.waitingFor.length > 0
          ? ` — waiting for ${p.waitingFor.map(describeBlocker).join(', ')}`
          : '';
        if (io.isTTY) {
          const width = 20;
          const filled = p.percent === null ? 0 : Math.round((p.percent / 100) * width);
          lastLine = `\r      [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${pct} ${p.phase}${waiting}`;
          io.stdout(`${lastLine}\u001b[K`);
        } else if (Date.now() - lastAt > 5000 || waiting !== '') {
          lastAt = Date.now();
          io.stdout(`      ${p.phase}${pct}${waiting}\n`);
        }
        return;
      }
      case 'plan':
        return;
    }
  };
}

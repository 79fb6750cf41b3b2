import type { RoutingHealth, RoutingTarget, StandbyHealth } from '../../../../engine/live-health/health-snapshot.ts';
import { ago, count, ms, pct, rate } from '../../lib/format.ts';

/**
 * The routers' side of the live page: where reads went in the window (the primary against each
 * replica), the fallbacks to the primary and why, and which routers are reporting. Fed by the rows the
 * routers publish to pgwarden.router_metrics every 5 s; the rates cover the last minute.
 */
export interface RoutingPanelProps {
  readonly routing: RoutingHealth | null;
  /** What pgwarden's own poll of each standby says: a standby it finds down is shown down here too. */
  readonly standbys: readonly StandbyHealth[];
  readonly now: number;
}

const REASONS: Readonly<Record<string, string>> = {
  'read-your-writes': 'read-your-writes',
  'reads-primary': 'policy reads: primary',
  starting: 'replica not sampled yet',
  unreachable: 'replica unreachable',
  'not-in-recovery': 'replica not in recovery',
  lag: 'lag over max_lag_ms',
  'lag-unknown': 'lag unknown',
  'recovery-conflict': 'recovery conflict',
  'replica-unavailable': 'replica unavailable',
  'standby-refused': 'standby refused a write',
  'not-replayed-yet': 'not replayed yet',
};

const reasonText = (reason: string): string => REASONS[reason] ?? reason;

function targetState(t: RoutingTarget, polled: StandbyHealth | undefined): { level: 'ok' | 'warn' | 'critical' | 'info'; text: string } {
  if (t.kind === 'primary') return { level: 'info', text: 'fallbacks and retries' };
  if (polled?.state === 'down') return { level: 'critical', text: 'down: pgwarden cannot reach it' };
  if (t.seenBy === 0) return { level: 'warn', text: 'not configured' };
  if (t.healthyIn === t.seenBy) return { level: 'ok', text: 'taking reads' };
  const why = t.reasons.map(reasonText).join(', ') || 'out of rotation';
  return { level: t.healthyIn === 0 ? 'critical' : 'warn', text: t.healthyIn === 0 ? why : `${t.healthyIn}/${t.seenBy} routers · ${why}` };
}

export function RoutingPanel({ routing, standbys, now }: RoutingPanelProps) {
  const reporting = routing?.state === 'reporting';
  const routers = routing?.routers ?? [];
  const totalRate = routing?.readsPerSecond ?? null;
  return (
    <div className="panel routing" data-testid="routing" data-state={routing?.state ?? 'none'}>
      <div className="panel-title">
        <h3>Routing</h3>
        <span className="hint" data-testid="routing-routers">
          {reporting
            ? `${routers.length} router${routers.length === 1 ? '' : 's'} reporting${routing.ratesWindowMs ? ` · rates over the last ${Math.round(routing.ratesWindowMs / 1000)} s` : ''}${routing.windowMs ? ` · fallbacks over ${Math.round(routing.windowMs / 1000)} s` : ''}`
            : ''}
          {routing && routing.staleRouters > 0 ? ` · ${routing.staleRouters} silent` : ''}
        </span>
      </div>
      {!routing ? (
        <div className="empty">Waiting for the first poll…</div>
      ) : !reporting ? (
        <div className="faint routing-note">{routing.note ?? 'No router is reporting.'} Routers created with <code>createRouter</code> publish here every 5 s.</div>
      ) : (
        <div className="routing-body">
          <div className="routing-targets">
            <div className="routing-summary">
              <span className="routing-big">{rate(totalRate, '')}</span>
              <span className="muted"> reads/s · {pct(routing.replicaReadShare, 0)} on replicas · {rate(routing.primaryStatementsPerSecond, '')} primary-only statements/s</span>
            </div>
            <table>
              <tbody>
                {routing.targets.map((t) => {
                  const polled = standbys.find((sb) => sb.name === t.name);
                  const state = targetState(t, polled);
                  const lagText = t.kind === 'replica' ? (polled?.state === 'down' || t.healthyIn === 0 ? 'lag unknown' : `lag ${ms(t.lagMs)}`) : '';
                  const share = totalRate && totalRate > 0 && t.readsPerSecond !== null ? t.readsPerSecond / totalRate : 0;
                  return (
                    <tr key={`${t.kind}:${t.name}`} data-testid="routing-target" data-target={t.name} data-kind={t.kind} data-rate={t.readsPerSecond ?? ''} data-level={state.level}>
                      <td className="routing-name">
                        {t.name}
                        <div>
                          <span className={`badge ${state.level}`}>{state.text}</span>
                        </div>
                        {lagText ? <div className="phone-only faint">{lagText}</div> : null}
                      </td>
                      <td className="routing-bar">
                        <div className="bar" title={pct(share, 0)}>
                          <span className={t.kind === 'primary' ? 'primary' : 'ok'} style={{ width: `${Math.min(100, share * 100).toFixed(0)}%` }} />
                        </div>
                      </td>
                      <td className="num">{rate(t.readsPerSecond)}</td>
                      <td className="num faint wide">{lagText}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="routing-side">
            <h4>Fallbacks to the primary</h4>
            {routing.fallbacks.length === 0 && routing.retries.length === 0 ? (
              <div className="faint">None in the window.</div>
            ) : (
              <ul className="routing-reasons">
                {routing.fallbacks.map((fb) => (
                  <li key={`f:${fb.reason}`} data-testid="routing-fallback" data-reason={fb.reason} data-count={fb.count}>
                    <span className="num">{count(fb.count)}</span> {reasonText(fb.reason)}
                  </li>
                ))}
                {routing.retries.map((r) => (
                  <li key={`r:${r.reason}`} data-testid="routing-retry" data-reason={r.reason} data-count={r.count}>
                    <span className="num">{count(r.count)}</span> retried: {reasonText(r.reason)}
                  </li>
                ))}
              </ul>
            )}
            {routing.failedReads ? <div className="routing-failed">{count(routing.failedReads)} reads failed</div> : null}
            <h4>Routers</h4>
            <ul className="routing-routers">
              {routers.slice(0, 6).map((r) => (
                <li key={r.instance} title={`instance ${r.instance}, started ${r.startedAt}`}>
                  {r.application} <span className="faint">· {r.host} pid {r.pid} · {ago(r.updatedAt, now)}</span>
                </li>
              ))}
              {routers.length > 6 ? <li className="faint">and {routers.length - 6} more</li> : null}
            </ul>
          </div>
        </div>
      )}
    </div>
  );
}

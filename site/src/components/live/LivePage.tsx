import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { CollectorState, Figures, HealthSnapshot, SeriesPoint, TopStatement } from '../../../../engine/live-health/health-snapshot.ts';
import type { FigureName } from '../../../../engine/live-health/health-snapshot.ts';
import type { Level, Threshold } from '../../../../engine/live-health/health-status.ts';
import type { StatementWindowName, StatementWindowResult, WindowStatement } from '../../../../engine/live-health/statement-history.ts';
import { flaggedSpans } from '../../lib/chart-scale.ts';
import { ago, bytes, count, ms, pct, rate } from '../../lib/format.ts';
import { Gauge, type GaugeBand } from './Gauge.tsx';
import { BlockingTree } from './BlockingTree.tsx';
import { RoutingPanel } from './RoutingPanel.tsx';
import { TimeSeries, type Line } from './TimeSeries.tsx';

/**
 * The live page: gauges, a status strip, time series and tables, fed by `pgwarden serve` — Server-Sent
 * Events on /api/stream, or polling /api/health every 5 s where a stream cannot be held. Nothing is
 * fetched while the tab is hidden; on return the last 15 minutes are fetched again so the charts have
 * no hole. Polls never overlap.
 */
export interface LivePageProps {
  /** Where `pgwarden serve` answers: '' for the same origin; null when this copy has none configured. */
  readonly apiBase: string | null;
  readonly thresholds: readonly Threshold[];
}

type ServerState = 'connecting' | 'open' | 'unreachable';

const WINDOW_MS = 15 * 60_000;
/** The charts' ranges: the last hour at the poll's resolution, beyond it a point a minute (kept across restarts). */
const RANGES = [
  { label: '15 min', ms: 15 * 60_000 },
  { label: '1 h', ms: 3_600_000 },
  { label: '6 h', ms: 6 * 3_600_000 },
  { label: '24 h', ms: 24 * 3_600_000 },
] as const;
const POLL_MS = 5000;
/** Intervals without a new snapshot after which the figures on the page are marked stale. */
const STALE_AFTER_INTERVALS = 3;

interface RunMark {
  readonly id: string;
  readonly kind: string;
  readonly outcome: string;
  readonly startedAt: string;
}

/** How often the runs are fetched again while the page is open: a new apply shows on the charts within it. */
const RUNS_EVERY_MS = 30_000;

interface Health {
  readonly collector: CollectorState;
  readonly snapshot: HealthSnapshot | null;
}

function formatFigure(t: Threshold | undefined, v: number | null): string {
  if (!t) return String(v ?? '—');
  if (t.unit === 'ms') return ms(v);
  if (t.unit === 'ratio') return pct(v, t.figure === 'cacheHitRatio' || t.figure === 'indexHitRatio' ? 2 : 1);
  return count(v);
}

function formatBound(t: Threshold, v: number): string {
  return t.unit === 'ms' ? ms(v) : t.unit === 'ratio' ? pct(v, 0) : String(v);
}

function bandsFor(t: Threshold | undefined, lo: number, hi: number): GaugeBand[] {
  if (!t) return [];
  if (t.direction === 'below') {
    return [
      { from: lo, to: Math.max(lo, t.critical), level: 'critical' },
      { from: Math.max(lo, t.critical), to: Math.max(lo, t.warn), level: 'warn' },
      { from: Math.max(lo, t.warn), to: hi, level: 'ok' },
    ];
  }
  return [
    { from: lo, to: Math.min(hi, t.warn), level: 'ok' },
    { from: Math.min(hi, t.warn), to: Math.min(hi, t.critical), level: 'warn' },
    { from: Math.min(hi, t.critical), to: hi, level: 'critical' },
  ];
}

type StatementSort = 'time' | 'mean' | 'p95' | 'calls' | 'rows';
const SORT_VALUE: Record<StatementSort, (q: TopStatement) => number> = {
  time: (q) => q.timeShare,
  mean: (q) => q.meanMs,
  p95: (q) => q.p95Ms ?? 0,
  calls: (q) => q.callsPerSecond,
  rows: (q) => q.rowsPerCall,
};

/** The longer windows' statements (from serve's checkpoints), sorted the same way where the figure exists. */
const WINDOW_SORT_VALUE: Record<StatementSort, (q: WindowStatement) => number> = {
  time: (q) => q.totalMs,
  mean: (q) => q.meanMs,
  p95: (q) => q.meanMs,
  calls: (q) => q.calls,
  rows: (q) => q.rows / Math.max(1, q.calls),
};
// The site is built from a copy of site/ alone: engine/ values cannot be imported, only types.
const STATEMENT_WINDOW_MS: Record<StatementWindowName, number> = { '5s': 5_000, '1h': 3_600_000, '24h': 86_400_000 };
const WINDOW_LABEL: Record<StatementWindowName, string> = { '5s': 'last poll', '1h': '1 h', '24h': '24 h' };
/** How often a longer window is fetched again while it is shown. */
const STATEMENT_WINDOW_EVERY_MS = 30_000;

/** A column header that sorts the statements by it, highest first (the collector's top ten by total time). */
function SortHeader(props: { label: string; by: StatementSort; sort: StatementSort; setSort: (s: StatementSort) => void; className: string }) {
  const active = props.sort === props.by;
  return (
    <th className={props.className} aria-sort={active ? 'descending' : 'none'}>
      <button type="button" className={`sort${active ? ' active' : ''}`} data-testid={`sort-${props.by}`} onClick={() => props.setSort(props.by)}>
        {props.label}
        {active ? ' ▾' : ''}
      </button>
    </th>
  );
}

/** The sum of a per-window count over the points that have it. */
const sumOf = (points: readonly SeriesPoint[], value: (p: SeriesPoint) => number | null | undefined): number => points.reduce((n, p) => n + (value(p) ?? 0), 0);

/** An identifier that may break after its dots and underscores on a phone, and nowhere else. */
function breakable(text: string) {
  return text.split(/(?<=[._])/).map((part, i) => (
    <span key={i}>
      {part}
      <wbr />
    </span>
  ));
}

/** Axis ticks: whole numbers where the decimals add nothing. */
const tickMs = (v: number): string => (v === 0 ? '0' : v >= 1000 ? `${+(v / 1000).toFixed(1)} s` : v >= 1 ? `${+v.toFixed(1)} ms` : `${+v.toFixed(2)} ms`);
const tickPct = (v: number): string => `${+(v * 100).toFixed(1)}%`;
const tickCount = (v: number): string => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(1)}`);

const linear = (lo: number, hi: number) => (v: number) => (v - lo) / (hi - lo);
// Latency and lag span orders of magnitude: 1 ms and 100 ms must both be readable on one arc.
const logScale = (lo: number, hi: number) => (v: number) => (v <= lo ? 0 : Math.log(v / lo) / Math.log(hi / lo));

export default function LivePage({ apiBase, thresholds }: LivePageProps) {
  const [health, setHealth] = useState<Health | null>(null);
  const [points, setPoints] = useState<SeriesPoint[]>([]);
  // plan/apply/maintain runs, for the markers on every chart (each links to its run page).
  const [runs, setRuns] = useState<readonly RunMark[]>([]);
  const [sort, setSort] = useState<StatementSort>('time');
  const [rangeMs, setRangeMs] = useState<number>(WINDOW_MS);
  const rangeRef = useRef<number>(WINDOW_MS);
  const [stWindow, setStWindow] = useState<StatementWindowName>('5s');
  const [windowed, setWindowed] = useState<StatementWindowResult | null>(null);
  const [server, setServer] = useState<ServerState>('connecting');
  const [transport, setTransport] = useState<'stream' | 'polling'>('stream');
  const [now, setNow] = useState(() => Date.now());
  const [visible, setVisible] = useState(true);
  const inFlight = useRef(false);
  // When (this browser's clock) a snapshot with a new seq last arrived: the server's clock may differ.
  const [freshAt, setFreshAt] = useState<number | null>(null);
  const lastSeq = useRef<number | null>(null);
  const api = useCallback((path: string) => `${apiBase ?? ''}${path}`, [apiBase]);

  const addSnapshot = useCallback((s: HealthSnapshot) => {
    if (lastSeq.current !== s.seq) {
      lastSeq.current = s.seq;
      setFreshAt(Date.now());
    }
    setPoints((prev) => {
      const t = Date.parse(s.at);
      if (prev.length > 0 && (prev[prev.length - 1]?.t ?? 0) >= t) return prev;
      const cutoff = Date.now() - rangeRef.current;
      return [...prev.filter((p) => p.t >= cutoff), { t, f: s.figures }];
    });
  }, []);

  // One fetch of the current state and the series (on load, on return to the tab, in polling mode).
  const refresh = useCallback(
    async (withSeries: boolean): Promise<boolean> => {
      if (inFlight.current) return true;
      inFlight.current = true;
      try {
        const [h, series] = await Promise.all([
          fetch(api('/api/health'), { cache: 'no-store' }).then((r) => r.json() as Promise<Health>),
          withSeries ? fetch(api(`/api/health/series?minutes=${Math.round(rangeRef.current / 60_000)}`), { cache: 'no-store' }).then((r) => r.json() as Promise<{ points: SeriesPoint[] }>) : Promise.resolve(null),
        ]);
        setHealth(h);
        if (series) setPoints(series.points);
        if (h.snapshot) addSnapshot(h.snapshot);
        setServer('open');
        setNow(Date.now());
        return true;
      } catch {
        setServer('unreachable');
        return false;
      } finally {
        inFlight.current = false;
      }
    },
    [api, addSnapshot],
  );

  useEffect(() => {
    const onVisibility = () => setVisible(document.visibilityState !== 'hidden');
    document.addEventListener('visibilitychange', onVisibility);
    onVisibility();
    return () => document.removeEventListener('visibilitychange', onVisibility);
  }, []);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    if (apiBase === null || !visible) return;
    let stopped = false;
    const load = async () => {
      const r = await fetch(api('/api/history?limit=50'), { cache: 'no-store' }).catch(() => null);
      if (!r?.ok || stopped) return;
      const body = (await r.json()) as { runs: RunMark[] };
      setRuns(body.runs.map((x) => ({ id: x.id, kind: x.kind, outcome: x.outcome, startedAt: x.startedAt })));
    };
    void load();
    const t = setInterval(() => void load(), RUNS_EVERY_MS);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, [apiBase, visible, api]);

  // A new range: its points are fetched once; the stream then adds to them.
  useEffect(() => {
    if (apiBase === null || rangeRef.current === rangeMs) return;
    rangeRef.current = rangeMs;
    let stopped = false;
    void fetch(api(`/api/health/series?minutes=${Math.round(rangeMs / 60_000)}`), { cache: 'no-store' })
      .then((r) => r.json() as Promise<{ points: SeriesPoint[] }>)
      .then((body) => {
        if (!stopped) setPoints(body.points);
      })
      .catch(() => undefined);
    return () => {
      stopped = true;
    };
  }, [apiBase, api, rangeMs]);

  // The hour's and the day's statements: fetched when chosen, and again every 30 s while shown.
  useEffect(() => {
    if (apiBase === null || !visible || stWindow === '5s') return;
    let stopped = false;
    const load = async () => {
      const r = await fetch(api(`/api/statements?window=${stWindow}`), { cache: 'no-store' }).catch(() => null);
      if (!r?.ok || stopped) return;
      setWindowed((await r.json()) as StatementWindowResult);
    };
    setWindowed(null);
    void load();
    const t = setInterval(() => void load(), STATEMENT_WINDOW_EVERY_MS);
    return () => {
      stopped = true;
      clearInterval(t);
    };
  }, [apiBase, visible, api, stWindow]);

  // The stream (or the polling fallback), only while the tab is visible.
  useEffect(() => {
    if (apiBase === null || !visible) return;
    let stopped = false;
    let source: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let failures = 0;

    const poll = async () => {
      if (stopped) return;
      await refresh(false);
      if (!stopped) timer = setTimeout(() => void poll(), POLL_MS);
    };
    const startPolling = () => {
      setTransport('polling');
      source?.close();
      source = null;
      void poll();
    };

    void refresh(true).then(() => {
      if (stopped) return;
      if (typeof EventSource === 'undefined') return startPolling();
      source = new EventSource(api('/api/stream'));
      setTransport('stream');
      source.addEventListener('open', () => {
        failures = 0;
        setServer('open');
      });
      source.addEventListener('snapshot', (e) => {
        const s = JSON.parse((e as MessageEvent<string>).data) as HealthSnapshot;
        setHealth((h) => ({
          collector: { ...(h?.collector ?? { since: s.at, intervalMs: POLL_MS }), state: 'connected', error: null, lastPollAt: s.at },
          snapshot: s,
        }));
        addSnapshot(s);
        setNow(Date.now());
      });
      source.addEventListener('state', (e) => {
        const state = JSON.parse((e as MessageEvent<string>).data) as CollectorState;
        setHealth((h) => ({ collector: state, snapshot: h?.snapshot ?? null }));
      });
      source.addEventListener('error', () => {
        // EventSource reconnects by itself (the server sends `retry: 5000`); after a few failures in a
        // row, a proxy that buffers or cuts streams is the likelier cause: poll instead.
        failures += 1;
        setServer('unreachable');
        if (failures >= 4) startPolling();
      });
    });
    return () => {
      stopped = true;
      source?.close();
      if (timer) clearTimeout(timer);
    };
  }, [apiBase, visible, api, refresh, addSnapshot]);

  const byFigure = useMemo(() => new Map(thresholds.map((t) => [t.figure, t])), [thresholds]);
  const snapshot = health?.snapshot ?? null;
  const f: Figures | null = snapshot?.figures ?? null;
  const level = (figure: FigureName): Level => snapshot?.status[figure]?.level ?? 'unknown';
  const dbState = health?.collector.state ?? 'connecting';
  const disconnected = server === 'unreachable' || dbState === 'disconnected';
  const intervalMs = health?.collector.intervalMs ?? POLL_MS;
  // "connected" with nothing new for several intervals (a hung server, a stalled stream) is not live data.
  const silentMs = freshAt === null ? null : now - freshAt;
  const stale = visible && silentMs !== null && silentMs > STALE_AFTER_INTERVALS * intervalMs;
  const connection = disconnected ? 'disconnected' : stale ? 'stale' : server === 'connecting' || dbState === 'connecting' ? 'connecting' : 'connected';
  const reason =
    server === 'unreachable'
      ? 'pgwarden serve is unreachable; retrying'
      : dbState === 'disconnected'
        ? `database unreachable: ${health?.collector.error ?? 'no answer'}; retrying every ${Math.round(intervalMs / 1000)} s`
        : stale
          ? `no new figures for ${Math.round((silentMs ?? 0) / 1000)} s (expected every ${Math.round(intervalMs / 1000)} s): what is shown may be out of date`
          : null;

  if (apiBase === null) {
    return (
      <div className="panel">
        <h2>The live page needs a running pgwarden serve</h2>
        <p>This is a published copy of the report site. Start the server next to the database and open its live page:</p>
        <pre className="sql-block">{'DATABASE_URL=postgres://… npx pgwarden serve   # then open http://127.0.0.1:3000/live/'}</pre>
        <p className="muted">
          Or publish the site with <code>pgwarden report --live-url https://pgwarden.internal.example</code> and start that server with
          <code> --cors-origin</code> set to this site's origin.
        </p>
      </div>
    );
  }

  const t = (fig: FigureName) => byFigure.get(fig);
  const inWindow = runs.filter((r) => Date.parse(r.startedAt) >= now - rangeMs).reverse();
  const events = inWindow.map((r) => ({ t: Date.parse(r.startedAt), label: `#${r.id} ${r.kind}` }));
  const cacheLo = Math.min(0.9, ...points.map((p) => p.f.cacheHitRatio ?? 1), ...points.map((p) => p.f.indexHitRatio ?? 1));
  const lines = {
    latency: [
      { label: 'p50 (est.)', color: '--series-2', value: (p: SeriesPoint) => p.f.latencyP50Ms },
      { label: 'p95 (est.)', color: '--series-1', value: (p: SeriesPoint) => p.f.latencyP95Ms },
      { label: 'mean', color: '--series-4', value: (p: SeriesPoint) => p.f.latencyMeanMs, dash: true },
      { label: 'p99 (est.)', color: '--series-3', value: (p: SeriesPoint) => p.f.latencyP99Ms, dash: true },
    ],
    // The routers' heartbeat (10 writes/s each) and pgwarden's polls are transactions too: drawn apart,
    // so the workload's transactions are not read as outnumbering its statements.
    throughput: [
      { label: 'workload transactions/s', color: '--series-1', value: (p: SeriesPoint) => (p.f.tps === null ? null : Math.max(0, p.f.tps - (p.f.ownStatementsPerSecond ?? 0))) },
      { label: 'statements/s', color: '--series-2', value: (p: SeriesPoint) => p.f.callsPerSecond },
      { label: "pgwarden's own (heartbeat, polls)/s", color: '--series-4', value: (p: SeriesPoint) => p.f.ownStatementsPerSecond ?? null, dash: true },
    ],
    hits: [
      { label: 'cache hit', color: '--series-1', value: (p: SeriesPoint) => p.f.cacheHitRatio },
      { label: 'index hit', color: '--series-2', value: (p: SeriesPoint) => p.f.indexHitRatio },
      { label: 'index scans', color: '--series-4', value: (p: SeriesPoint) => p.f.indexScanShare, dash: true },
    ],
    lag: [{ label: 'replay lag', color: '--series-2', value: (p: SeriesPoint) => p.f.replicaLagMs }],
    connections: [
      { label: 'connections', color: '--series-1', value: (p: SeriesPoint) => p.f.connections },
      { label: 'idle in tx > 5 s', color: '--series-3', value: (p: SeriesPoint) => p.f.idleInTransaction },
      { label: 'lock waits', color: '--series-2', value: (p: SeriesPoint) => p.f.locksWaiting },
    ],
    poll: [{ label: 'poll wall time', color: '--series-4', value: (p: SeriesPoint) => p.f.pollMs }],
    wal: [{ label: 'WAL written', color: '--series-2', value: (p: SeriesPoint) => p.f.walBytesPerSecond }],
  } satisfies Record<string, Line[]>;

  return (
    <div className={`live${stale ? ' stale' : ''}`} data-testid="live" data-connection={connection} data-stale={stale ? 'true' : 'false'} data-seq={snapshot?.seq ?? 0}>
      <div className="live-head">
        <div className="live-title">
          <h1>Live</h1>
          <span className={`badge ${connection}`} data-testid="connection">
            {connection}
          </span>
          {reason ? <span className="muted" data-testid="connection-reason">{reason}</span> : null}
        </div>
        <div className="live-meta">
          <span data-testid="last-updated">
            last updated {snapshot ? `${new Date(snapshot.at).toLocaleTimeString('en-GB')} (${ago(snapshot.at, now)})` : 'never'}
          </span>
          <span className="faint">
            every {Math.round((health?.collector.intervalMs ?? POLL_MS) / 1000)} s · {transport === 'stream' ? 'live stream' : 'polling'}
            {visible ? '' : ' · paused while hidden'}
          </span>
          {snapshot ? (
            <span
              className="faint"
              data-testid="poll-cost"
              title="This poll: wall time from its first query to its last answer, primary and standbys in parallel. pgwarden in the database: the execution time pg_stat_statements counted for all of pgwarden's statements over the window (this poll, the lag sampler, the once-a-minute checks, the heartbeat): not part of the poll's wall time."
            >
              this poll {ms(snapshot.poll.wallMs)} wall, {snapshot.poll.queries} queries
              {snapshot.poll.databaseMs !== null ? ` · pgwarden in the database ${ms(snapshot.poll.databaseMs)} over the last ${Math.round((snapshot.windowMs ?? intervalMs) / 1000)} s` : ''}
            </span>
          ) : null}
        </div>
      </div>

      <div className="status-strip" data-testid="status-strip">
        {thresholds.map((th) => {
          const st = snapshot?.status[th.figure];
          const lv = st?.level ?? 'unknown';
          return (
            <div key={th.figure} className={`status-item ${lv}`} title={th.note} data-figure={th.figure} data-level={lv}>
              <span className="status-label">{th.label}</span>
              <span className="status-value">{th.figure === 'replicaLagMs' && f && f.standbysDown > 0 && f.replicaLagMs === null ? `${f.standbysDown} down` : formatFigure(th, f ? f[th.figure] : null)}</span>
              <span className="status-bound" title={st && st.pending > 0 && st.raw !== 'unknown' ? `${st.raw} for ${st.pending} poll(s); the colour changes after 3` : undefined}>
                {th.direction === 'below' ? '≥' : '≤'} {formatBound(th, th.warn)}
                {st && st.pending > 0 && st.raw !== 'unknown' ? ' ·' : ''}
              </span>
            </div>
          );
        })}
      </div>

      <div className="grid cols-6 gauges">
        <Gauge
          id="latency"
          label="p95 latency"
          value={f?.latencyP95Ms ?? null}
          text={ms(f?.latencyP95Ms ?? null)}
          sub={`mean ${ms(f?.latencyMeanMs ?? null)} · est.`}
          position={logScale(0.1, 2000)}
          bands={bandsFor(t('latencyP95Ms'), 0.1, 2000)}
          level={level('latencyP95Ms')}
        />
        <Gauge
          id="cache-hit"
          label="Cache hit"
          value={f?.cacheHitRatio ?? null}
          text={pct(f?.cacheHitRatio ?? null, 2)}
          sub="shared buffers"
          position={linear(0.9, 1)}
          bands={bandsFor(t('cacheHitRatio'), 0.9, 1)}
          level={level('cacheHitRatio')}
        />
        <Gauge
          id="index-hit"
          label="Index hit"
          value={f?.indexHitRatio ?? null}
          text={pct(f?.indexHitRatio ?? null, 2)}
          sub={`index scans ${pct(f?.indexScanShare ?? null, 0)}`}
          position={linear(0.9, 1)}
          bands={bandsFor(t('indexHitRatio'), 0.9, 1)}
          level={level('indexHitRatio')}
        />
        <Gauge
          id="replica-lag"
          label="Replica lag"
          value={f?.replicaLagMs ?? null}
          text={snapshot && snapshot.standbys.length === 0 ? 'no replica' : f && f.standbysDown > 0 && f.replicaLagMs === null ? `${f.standbysDown} down` : ms(f?.replicaLagMs ?? null)}
          sub={f?.replicaLagBytes !== null && f?.replicaLagBytes !== undefined ? `${bytes(f.replicaLagBytes)} behind` : (snapshot?.standbys[0]?.lagSource ?? '')}
          position={logScale(1, 10_000)}
          bands={bandsFor(t('replicaLagMs'), 1, 10_000)}
          level={level('replicaLagMs')}
        />
        <Gauge
          id="table-health"
          label="Table health"
          value={f?.tableHealth ?? null}
          text={pct(f?.tableHealth ?? null, 1)}
          sub={snapshot?.tables.worst[0] ? `worst: ${snapshot.tables.worst[0].name}` : 'worst table'}
          position={linear(0, 1)}
          bands={bandsFor(t('tableHealth'), 0, 1)}
          level={level('tableHealth')}
        />
        <Gauge
          id="connections"
          label="Connections"
          value={f?.connectionsShare ?? null}
          text={f ? `${f.connections}/${f.maxConnections}` : '—'}
          sub={snapshot ? `${snapshot.primary.connections.active} active · ${snapshot.primary.connections.idleInTransaction} idle in tx` : ''}
          position={linear(0, 1)}
          bands={bandsFor(t('connectionsShare'), 0, 1)}
          level={level('connectionsShare')}
        />
      </div>

      <div className="ranges" role="group" aria-label="Chart range" data-testid="ranges">
        <span className="faint">Charts over</span>
        {RANGES.map((r) => (
          <button key={r.label} type="button" className={`window${rangeMs === r.ms ? ' active' : ''}`} aria-pressed={rangeMs === r.ms} data-testid={`range-${r.label.replace(' ', '')}`} onClick={() => setRangeMs(r.ms)}>
            {r.label}
          </button>
        ))}
      </div>
      <div className="grid cols-3">
        <TimeSeries id="latency" title="Statement latency" hint="pg_stat_statements deltas" lines={lines.latency} points={points} windowMs={rangeMs} now={now} events={events} format={(v) => ms(v)} tick={tickMs} threshold={t('latencyP95Ms')?.warn} />
        <TimeSeries id="throughput" title="Throughput" hint={f ? `${pct(f.rollbackShare)} rollbacks` : undefined} lines={lines.throughput} points={points} windowMs={rangeMs} now={now} events={events} format={(v) => rate(v, '')} tick={tickCount} />
        <TimeSeries id="hits" title="Hit rates" hint={`over each ${Math.round((health?.collector.intervalMs ?? POLL_MS) / 1000)} s window`} lines={lines.hits} points={points} windowMs={rangeMs} now={now} events={events} format={(v) => pct(v, 2)} tick={tickPct} yRange={[Math.max(0, Math.floor(cacheLo * 20) / 20), 1.001]} threshold={t('cacheHitRatio')?.warn} />
        <TimeSeries
          id="lag"
          title="Replica lag"
          hint={snapshot?.standbys.map((s) => `${s.name}: ${s.state === 'down' || s.state === 'not-streaming' ? `${s.state}, lag unknown` : (s.lagSource ?? s.state)}`).join(' · ')}
          lines={lines.lag}
          points={points}
          windowMs={rangeMs}
          now={now}
          events={events}
          format={(v) => ms(v)}
          tick={tickMs}
          threshold={t('replicaLagMs')?.warn}
          marks={{ label: 'standby down or not streaming', spans: flaggedSpans(points, (p) => p.f.standbysDown > 0) }}
        />
        <TimeSeries id="connections" title="Sessions" hint={f ? `max_connections ${f.maxConnections}` : undefined} lines={lines.connections} points={points} windowMs={rangeMs} now={now} events={events} format={(v) => count(v)} tick={tickCount} />
        <TimeSeries
          id="wal"
          title="WAL and checkpoints"
          hint={`checkpoints in the window: ${sumOf(points, (p) => p.f.checkpointsRequested)} requested, ${sumOf(points, (p) => p.f.checkpointsTimed)} timed`}
          lines={lines.wal}
          points={points}
          windowMs={rangeMs}
          now={now}
          events={events}
          format={(v) => `${bytes(v)}/s`}
          tick={(v) => bytes(v)}
        />
        <TimeSeries id="poll" title="Poll cost" hint="the collector's own overhead" lines={lines.poll} points={points} windowMs={rangeMs} now={now} events={events} format={(v) => ms(v)} tick={tickMs} />
      </div>

      {inWindow.length > 0 ? (
        <div className="run-marks faint" data-testid="run-marks">
          Runs on the charts:{' '}
          {inWindow.map((r, i) => (
            <span key={r.id}>
              {i > 0 ? ' · ' : ''}
              <a href={`../runs/${r.id}/`} data-testid="run-mark">
                #{r.id} {r.kind}
              </a>{' '}
              {new Date(r.startedAt).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })} ({r.outcome})
            </span>
          ))}
        </div>
      ) : null}

      <div className="grid live-split">
        <div className="panel">
          <div className="panel-title">
            <h3>Statements with the most time, {stWindow === '5s' ? `last ${snapshot?.windowMs ? `${Math.round(snapshot.windowMs / 1000)} s` : 'window'}` : `last ${WINDOW_LABEL[stWindow]}`}</h3>
            <span className="windows" role="group" aria-label="Window">
              {(['5s', '1h', '24h'] as const).map((w) => (
                <button key={w} type="button" className={`window${stWindow === w ? ' active' : ''}`} aria-pressed={stWindow === w} data-testid={`window-${w}`} onClick={() => setStWindow(w)}>
                  {w === '5s' ? 'now' : WINDOW_LABEL[w]}
                </button>
              ))}
            </span>
          </div>
          {stWindow !== '5s' ? (
            <WindowTable result={windowed} sort={sort} setSort={setSort} window={stWindow} api={api} />
          ) : !snapshot ? (
            <div className="empty">Waiting for the first poll…</div>
          ) : !snapshot.statements.available ? (
            <div className="note">{snapshot.statements.reason}</div>
          ) : snapshot.statements.top.length === 0 ? (
            <div className="empty">No statements in this window.</div>
          ) : (
            <div className="table-wrap">
              <table data-testid="slow-queries">
                <thead>
                  <tr>
                    <th>Statement</th>
                    <SortHeader label="Calls/s" by="calls" sort={sort} setSort={setSort} className="num wide" />
                    <SortHeader label="Mean" by="mean" sort={sort} setSort={setSort} className="num" />
                    <SortHeader label="p95 est." by="p95" sort={sort} setSort={setSort} className="num" />
                    <SortHeader label="Rows" by="rows" sort={sort} setSort={setSort} className="num wide" />
                    <SortHeader label="Time" by="time" sort={sort} setSort={setSort} className="num" />
                  </tr>
                </thead>
                <tbody>
                  {[...snapshot.statements.top].sort((a, b) => SORT_VALUE[sort](b) - SORT_VALUE[sort](a)).map((q) => (
                    <tr key={q.id}>
                      <td>
                        <div className="query" title={q.query ?? ''}>
                          {q.query ?? q.id}
                        </div>
                      </td>
                      <td className="num wide">{rate(q.callsPerSecond, '')}</td>
                      <td className="num">{ms(q.meanMs)}</td>
                      <td className="num">{ms(q.p95Ms)}</td>
                      <td className="num wide">{count(q.rowsPerCall)}</td>
                      <td className="num">
                        <div className="bar" title={pct(q.timeShare, 0)}>
                          <span style={{ width: `${(q.timeShare * 100).toFixed(0)}%` }} />
                        </div>
                        {pct(q.timeShare, 0)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
        <div className="panel">
          <div className="panel-title">
            <h3>Latency distribution</h3>
            <span className="hint">share of calls, est.</span>
          </div>
          {snapshot && snapshot.statements.buckets.length > 0 ? (
            <div className="buckets">
              {snapshot.statements.buckets.map((b, i) => {
                const lower = i === 0 ? 0 : (snapshot.statements.buckets[i - 1]?.leMs ?? 0);
                const th = t('latencyP95Ms');
                const lv = th && lower >= th.critical ? 'critical' : th && lower >= th.warn ? 'warn' : 'ok';
                return (
                  <div key={String(b.leMs)} className="bucket">
                    <span className="bucket-label">{b.leMs === null ? `> ${ms(lower)}` : `≤ ${ms(b.leMs)}`}</span>
                    <div className="bar">
                      <span className={lv} style={{ width: `${Math.min(100, b.share * 100).toFixed(1)}%` }} />
                    </div>
                    <span className="bucket-value">{pct(b.share, 0)}</span>
                  </div>
                );
              })}
            </div>
          ) : (
            <div className="empty">No statements in this window.</div>
          )}
          <h3 style={{ marginTop: 14 }}>Replicas</h3>
          {!snapshot || snapshot.standbys.length === 0 ? (
            <div className="faint">No standby is connected to this primary.</div>
          ) : (
            <table>
              <tbody>
                {snapshot.standbys.map((s) => (
                  <tr key={s.name}>
                    <td>{s.name}</td>
                    <td>
                      <span className={`badge ${s.state === 'streaming' ? 'ok' : s.state === 'down' ? 'critical' : 'warn'}`}>{s.state}</span>
                    </td>
                    <td className="num">{ms(s.lagMs)}</td>
                    <td className="num faint">{bytes(s.lagBytes)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>

      <RoutingPanel routing={snapshot?.routing ?? null} standbys={snapshot?.standbys ?? []} now={now} />

      <div className="grid cols-2">
        <div className="panel">
          <div className="panel-title">
            <h3>Tables, worst first</h3>
            <span className="hint">{snapshot ? `${count(snapshot.tables.count)} tables · ${count(snapshot.tables.deadRows)} dead rows` : ''}</span>
          </div>
          {!snapshot || snapshot.tables.worst.length === 0 ? (
            <div className="empty">No table has dead rows worth a look.</div>
          ) : (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Table</th>
                    <th className="num">Health</th>
                    <th>Dead vs autovacuum trigger</th>
                    <th className="num wide">XID age</th>
                  </tr>
                </thead>
                <tbody>
                  {snapshot.tables.worst.slice(0, 8).map((tb) => {
                    const h = tb.health ?? 1 - tb.deadShare;
                    const over = tb.deadRows / Math.max(1, tb.autovacuumTrigger);
                    return (
                      <tr key={`${tb.schema}.${tb.name}`}>
                        <td>
                          <code>{breakable(`${tb.schema}.${tb.name}`)}</code>
                        </td>
                        <td className="num">
                          {pct(h, 1)}
                          {tb.limitedBy && h < 0.999 ? <div className="faint">{tb.limitedBy}</div> : null}
                        </td>
                        <td>
                          <div className="bar" title={`${count(tb.deadRows)} of ${count(tb.autovacuumTrigger)}`}>
                            <span className={over > 2 ? 'critical' : over > 1 ? 'warn' : 'ok'} style={{ width: `${Math.min(100, over * 100).toFixed(0)}%` }} />
                          </div>
                          <span className="faint">
                            {count(tb.deadRows)} / {count(tb.autovacuumTrigger)}
                          </span>
                        </td>
                        <td className="num wide">{count(tb.xidAge)}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </div>
        <div className="panel">
          <div className="panel-title">
            <h3>Findings</h3>
            <span className="hint">with the SQL that fixes each</span>
          </div>
          {!snapshot || snapshot.findings.length === 0 ? (
            <div className="empty">Nothing to fix right now.</div>
          ) : (
            <div className="findings">
              {snapshot.findings.slice(0, 8).map((fd, i) => (
                <div key={`${fd.kind}-${fd.subject}-${i}`} className="finding">
                  <div>
                    <span className={`badge ${fd.level}`}>{fd.level}</span> <code>{fd.subject}</code> <span className="muted">{fd.message}</span>
                  </div>
                  <pre className="sql-block">{fd.runOn === 'primary' ? fd.fixSql : `-- on ${fd.runOn}\n${fd.fixSql}`}</pre>
                </div>
              ))}
            </div>
          )}
        </div>
      </div>
      {snapshot ? <BlockingTree sessions={snapshot.sessions} /> : null}
      {snapshot && snapshot.sessions.length > 0 ? (
        <div className="panel">
          <div className="panel-title">
            <h3>Oldest open transactions</h3>
            <span className="hint">{f?.longestTransactionMs ? `oldest ${ms(f.longestTransactionMs)}` : ''}</span>
          </div>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th className="num">pid</th>
                  <th className="wide">user</th>
                  <th className="wide">application</th>
                  <th>state</th>
                  <th className="num">transaction</th>
                  <th>query</th>
                </tr>
              </thead>
              <tbody>
                {snapshot.sessions.map((s) => (
                  <tr key={s.pid}>
                    <td className="num">{s.pid}</td>
                    <td className="wide">{s.user}</td>
                    <td className="muted wide">{s.application}</td>
                    <td>{s.state}</td>
                    <td className="num">{ms(s.transactionMs)}</td>
                    <td>
                      <div className="query">{s.query}</div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ) : null}
    </div>
  );
}

/** The statements of the last hour or day: counters now minus those of the poll nearest that far back. */
function WindowTable(props: { result: StatementWindowResult | null; sort: StatementSort; setSort: (s: StatementSort) => void; window: StatementWindowName; api: (path: string) => string }) {
  const { result, sort, setSort } = props;
  const [open, setOpen] = useState<string | null>(null);
  if (!result) return <div className="empty">Loading…</div>;
  if (result.from === null) return <div className="empty">Not enough polls yet: the window starts with serve's second poll.</div>;
  const covered = result.coveredMs;
  // Serve keeps its checkpoints in memory: after a restart the window is only as long as serve has run.
  const short = covered < 0.98 * STATEMENT_WINDOW_MS[props.window];
  const span = covered >= 3_600_000 ? `${(covered / 3_600_000).toFixed(1)} h` : `${Math.max(1, Math.round(covered / 60_000))} min`;
  const by = sort === 'p95' ? 'mean' : sort;
  return (
    <>
      <div className="hint" data-testid="window-covered">
        {count(result.calls)} calls, {ms(result.totalMs)} since {new Date(result.from).toLocaleTimeString()}
        {short ? ` — serve has run ${span} of the ${WINDOW_LABEL[props.window]} so far` : ''}
        {result.resetAt ? ' (pg_stat_statements was reset inside it)' : ''}
      </div>
      {result.statements.length === 0 ? (
        <div className="empty">No statements in this window.</div>
      ) : (
        <div className="table-wrap">
          <table data-testid="window-queries">
            <thead>
              <tr>
                <th>Statement</th>
                <SortHeader label="Calls" by="calls" sort={by} setSort={setSort} className="num" />
                <SortHeader label="Mean" by="mean" sort={by} setSort={setSort} className="num" />
                <SortHeader label="Rows/call" by="rows" sort={by} setSort={setSort} className="num wide" />
                <SortHeader label="Total" by="time" sort={by} setSort={setSort} className="num" />
              </tr>
            </thead>
            <tbody>
              {[...result.statements].sort((a, b) => WINDOW_SORT_VALUE[by](b) - WINDOW_SORT_VALUE[by](a)).flatMap((q) => [
                <tr key={q.id} className="drillable" data-testid="window-row" aria-expanded={open === q.id} onClick={() => setOpen(open === q.id ? null : q.id)}>
                  <td>
                    <div className="query" title={q.query ?? ''}>
                      {q.query ?? q.id}
                    </div>
                  </td>
                  <td className="num">{count(q.calls)}</td>
                  <td className="num">{ms(q.meanMs)}</td>
                  <td className="num wide">{count(q.rows / Math.max(1, q.calls))}</td>
                  <td className="num">
                    {ms(q.totalMs)} <span className="faint">{pct(q.timeShare, 0)}</span>
                  </td>
                </tr>,
                open === q.id ? (
                  <tr key={`${q.id}-drill`}>
                    <td colSpan={5}>
                      <StatementDrill id={q.id} api={props.api} />
                    </td>
                  </tr>
                ) : null,
              ])}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

interface StatementDrillData {
  readonly id: string;
  readonly query: string | null;
  readonly points: readonly { readonly from: string; readonly to: string; readonly calls: number; readonly meanMs: number }[];
}

/** One statement opened: its whole text and its mean latency per checkpoint interval, as bars. */
function StatementDrill(props: { id: string; api: (path: string) => string }) {
  const [data, setData] = useState<StatementDrillData | null | 'missing'>(null);
  useEffect(() => {
    let stopped = false;
    void fetch(props.api(`/api/statements/history?id=${encodeURIComponent(props.id)}`), { cache: 'no-store' })
      .then(async (r) => (r.ok ? ((await r.json()) as StatementDrillData) : 'missing'))
      .then((d) => {
        if (!stopped) setData(d);
      })
      .catch(() => undefined);
    return () => {
      stopped = true;
    };
  }, [props.id, props.api]);
  if (data === null) return <div className="faint">Loading…</div>;
  if (data === 'missing') return <div className="faint">serve has no history for this statement.</div>;
  const peak = Math.max(...data.points.map((p) => p.meanMs), 0);
  const width = 100 / Math.max(1, data.points.length);
  return (
    <div className="drill" data-testid="statement-drill">
      <pre className="sql-block">{data.query ?? data.id}</pre>
      <div className="faint">
        Mean latency per interval ({data.points.length} since {data.points[0] ? new Date(data.points[0].from).toLocaleTimeString() : '—'}), highest {ms(peak)}; <code>pgwarden analyze</code> reads its plan, <code>pgwarden advise</code> the index it needs.
      </div>
      <svg className="drill-bars" viewBox="0 0 100 30" preserveAspectRatio="none" role="img" aria-label="mean latency per interval">
        {data.points.map((p, i) => {
          const h = peak > 0 ? Math.max(0.5, (28 * p.meanMs) / peak) : 0.5;
          return (
            <rect key={p.to} x={i * width + width * 0.1} y={30 - h} width={width * 0.8} height={h}>
              <title>{`${new Date(p.from).toLocaleTimeString()}–${new Date(p.to).toLocaleTimeString()}: ${ms(p.meanMs)} mean, ${count(p.calls)} calls`}</title>
            </rect>
          );
        })}
      </svg>
    </div>
  );
}

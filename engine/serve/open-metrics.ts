import type { CollectorState, HealthSnapshot } from '../live-health/health-snapshot.ts';

/**
 * `GET /metrics`: the live snapshot in the text exposition format, for Prometheus and anything that
 * scrapes it. Names follow Prometheus's conventions: the `pgwarden_` prefix, base units as a suffix
 * (`_seconds`, `_bytes`, `_ratio` for 0..1), `_total` on counters. Two flavours of the same families:
 * OpenMetrics 1.0 (`# UNIT`, counters' samples with `_total`, `# EOF`) when the scraper asks for it in
 * `Accept`, as Prometheus does, and the classic text format 0.0.4 otherwise.
 *
 * The snapshot's figures are rates and shares over the last poll window (gauges); the routers'
 * counters are their own totals since each started (counters, one series per router instance, so a
 * router's restart is a counter reset Prometheus handles).
 *
 *   pgwarden_statement_latency_seconds{percentile="95"} 0.0042
 *   pgwarden_replica_lag_seconds{replica="standby1"} 0.0009
 *   pgwarden_router_reads_total{router="a1b2",application="orders-api",target="standby1"} 18234
 */

export type MetricsFormat = 'openmetrics' | 'text';

export const CONTENT_TYPES: Readonly<Record<MetricsFormat, string>> = {
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
  text: 'text/plain; version=0.0.4; charset=utf-8',
};

/** OpenMetrics when the scraper lists it in Accept (Prometheus does, with a higher weight), else the classic text. */
export function metricsFormat(accept: string | undefined): MetricsFormat {
  return /application\/openmetrics-text/i.test(accept ?? '') ? 'openmetrics' : 'text';
}

type Labels = Readonly<Record<string, string>>;

interface Sample {
  readonly labels?: Labels;
  readonly value: number | null;
}

interface Family {
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  /** The unit suffix of the name (OpenMetrics' `# UNIT`), when it has one. */
  readonly unit?: 'seconds' | 'bytes' | 'ratio';
  readonly samples: readonly Sample[];
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(labels: Labels | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

export function renderFamilies(families: readonly Family[], format: MetricsFormat): string {
  const out: string[] = [];
  for (const f of families) {
    // A figure that has no value now (no standby, no pg_stat_statements) is left out, not reported as 0.
    const samples = f.samples.filter((s): s is Sample & { value: number } => s.value !== null && Number.isFinite(s.value));
    if (samples.length === 0) continue;
    // OpenMetrics names a counter family without `_total` and its samples with it; the classic format
    // names both with it.
    const family = format === 'openmetrics' && f.type === 'counter' ? f.name.replace(/_total$/, '') : f.name;
    out.push(`# HELP ${family} ${escapeHelp(f.help)}`);
    out.push(`# TYPE ${family} ${f.type}`);
    if (format === 'openmetrics' && f.unit) out.push(`# UNIT ${family} ${f.unit}`);
    for (const s of samples) out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
  }
  if (format === 'openmetrics') out.push('# EOF');
  return `${out.join('\n')}\n`;
}

const seconds = (ms: number | null | undefined): number | null => (ms === null || ms === undefined ? null : ms / 1000);

/** Every live figure of a snapshot as metric families. */
export function snapshotFamilies(snapshot: HealthSnapshot | null, state: CollectorState): Family[] {
  const up: Family = {
    name: 'pgwarden_up',
    type: 'gauge',
    help: 'Whether the collector reached the primary at its last poll (1) or not (0).',
    samples: [{ value: state.state === 'connected' ? 1 : 0 }],
  };
  if (snapshot === null) return [up];
  const f = snapshot.figures;
  const s = snapshot;
  const routers = s.routing?.routers ?? [];
  const routerLabels = (r: (typeof routers)[number]): Labels => ({ router: r.instance, application: r.application });
  const tables = s.tables.worst;
  const bloat = s.slow?.tableHealth ?? [];
  return [
    up,
    { name: 'pgwarden_poll_window_seconds', type: 'gauge', unit: 'seconds', help: 'The window the rates and shares cover: the time between the last two polls.', samples: [{ value: seconds(s.windowMs) }] },
    {
      name: 'pgwarden_statement_latency_seconds',
      type: 'gauge',
      unit: 'seconds',
      help: 'Statement latency over the window, estimated from pg_stat_statements (mean and stddev per statement; it keeps no histogram).',
      samples: [
        // Not `quantile`: that label belongs to summaries, which these estimates are not.
        { labels: { percentile: '50' }, value: seconds(f.latencyP50Ms) },
        { labels: { percentile: '95' }, value: seconds(f.latencyP95Ms) },
        { labels: { percentile: '99' }, value: seconds(f.latencyP99Ms) },
      ],
    },
    { name: 'pgwarden_statement_latency_mean_seconds', type: 'gauge', unit: 'seconds', help: 'Mean statement latency over the window (pg_stat_statements).', samples: [{ value: seconds(f.latencyMeanMs) }] },
    { name: 'pgwarden_statements_per_second', type: 'gauge', help: "The workload's statements per second over the window, pgwarden's own left out.", samples: [{ value: f.callsPerSecond }] },
    { name: 'pgwarden_transactions_per_second', type: 'gauge', help: 'Transactions ended per second over the window (commits and rollbacks), pgwarden\'s own included.', samples: [{ value: f.tps }] },
    { name: 'pgwarden_own_statements_per_second', type: 'gauge', help: "pgwarden's own statements per second on the primary (the routers' heartbeat writes, the polls).", samples: [{ value: f.ownStatementsPerSecond }] },
    { name: 'pgwarden_rollback_ratio', type: 'gauge', unit: 'ratio', help: 'Share of the transactions ended in the window that rolled back.', samples: [{ value: f.rollbackShare }] },
    { name: 'pgwarden_cache_hit_ratio', type: 'gauge', unit: 'ratio', help: "Share of this database's block reads served from shared buffers in the window.", samples: [{ value: f.cacheHitRatio }] },
    { name: 'pgwarden_index_hit_ratio', type: 'gauge', unit: 'ratio', help: 'Share of user-index block reads served from shared buffers in the window.', samples: [{ value: f.indexHitRatio }] },
    { name: 'pgwarden_index_scan_ratio', type: 'gauge', unit: 'ratio', help: 'Index scans among all scans of user tables in the window.', samples: [{ value: f.indexScanShare }] },
    { name: 'pgwarden_connections', type: 'gauge', help: 'Client connections to the instance, by state.', samples: [
      { labels: { state: 'active' }, value: s.primary.connections.active },
      { labels: { state: 'idle' }, value: s.primary.connections.idle },
      { labels: { state: 'idle_in_transaction' }, value: s.primary.connections.idleInTransaction },
    ] },
    { name: 'pgwarden_connections_max', type: 'gauge', help: 'max_connections of the instance.', samples: [{ value: f.maxConnections }] },
    { name: 'pgwarden_lock_waits', type: 'gauge', help: 'Lock requests not granted at the poll.', samples: [{ value: f.locksWaiting }] },
    { name: 'pgwarden_oldest_transaction_seconds', type: 'gauge', unit: 'seconds', help: 'Age of the oldest open transaction (0 when none is open).', samples: [{ value: seconds(f.longestTransactionMs) }] },
    { name: 'pgwarden_xid_age_ratio', type: 'gauge', unit: 'ratio', help: "This database's oldest unfrozen transaction ID as a share of the 2^31 wraparound horizon.", samples: [{ value: f.xidAgeShare }] },
    {
      name: 'pgwarden_window_checkpoints',
      type: 'gauge',
      help: 'Checkpoints of the instance in the last window, by kind: timed (on schedule) or requested (max_wal_size reached, or CHECKPOINT).',
      samples: [
        { labels: { kind: 'timed' }, value: f.checkpointsTimed },
        { labels: { kind: 'requested' }, value: f.checkpointsRequested },
      ],
    },
    { name: 'pgwarden_wal_bytes_per_second', type: 'gauge', help: 'WAL written per second over the window, in bytes.', samples: [{ value: f.walBytesPerSecond }] },
    {
      name: 'pgwarden_replica_lag_seconds',
      type: 'gauge',
      unit: 'seconds',
      help: 'Replay lag of each standby (heartbeat, WAL positions or replay time, whichever the collector could use). Absent while it is down or not streaming.',
      samples: s.standbys.map((r) => ({ labels: { replica: r.name }, value: r.state === 'down' || r.state === 'not-streaming' ? null : seconds(r.lagMs) })),
    },
    {
      name: 'pgwarden_replica_lag_bytes',
      type: 'gauge',
      unit: 'bytes',
      help: 'WAL each standby has not replayed yet, in bytes.',
      samples: s.standbys.map((r) => ({ labels: { replica: r.name }, value: r.state === 'down' || r.state === 'not-streaming' ? null : r.lagBytes })),
    },
    {
      name: 'pgwarden_replica_up',
      type: 'gauge',
      help: 'Whether each standby is streaming (1) or down, not streaming or paused (0).',
      samples: s.standbys.map((r) => ({ labels: { replica: r.name }, value: r.state === 'streaming' ? 1 : 0 })),
    },
    {
      name: 'pgwarden_table_health_ratio',
      type: 'gauge',
      unit: 'ratio',
      help: "Health score of the worst tables, 0..1 (pgwarden's table health when computed, else their live-row share).",
      samples: tables.map((t) => ({ labels: { schema: t.schema, table: t.name }, value: t.health ?? 1 - t.deadShare })),
    },
    { name: 'pgwarden_table_dead_tuples', type: 'gauge', help: 'Dead tuples of the worst tables.', samples: tables.map((t) => ({ labels: { schema: t.schema, table: t.name }, value: t.deadRows })) },
    { name: 'pgwarden_table_autovacuum_trigger_tuples', type: 'gauge', help: 'Dead tuples at which autovacuum acts on each of the worst tables.', samples: tables.map((t) => ({ labels: { schema: t.schema, table: t.name }, value: t.autovacuumTrigger })) },
    { name: 'pgwarden_table_bloat_bytes', type: 'gauge', unit: 'bytes', help: 'Estimated bloat of the worst tables (statistics-based estimate, slow cadence).', samples: bloat.map((t) => ({ labels: { schema: t.schema, table: t.name }, value: t.bloatBytes })) },
    { name: 'pgwarden_router_reads_total', type: 'counter', help: 'Reads each router ran, by target (the primary or a replica), since it started.', samples: routers.flatMap((r) => Object.entries(r.counters?.reads ?? {}).map(([target, n]) => ({ labels: { ...routerLabels(r), target }, value: n }))) },
    { name: 'pgwarden_router_fallbacks_total', type: 'counter', help: 'Reads each router sent to the primary although a replica could have served them, by reason, since it started.', samples: routers.flatMap((r) => Object.entries(r.counters?.fallbacks ?? {}).map(([reason, n]) => ({ labels: { ...routerLabels(r), reason }, value: n }))) },
    { name: 'pgwarden_router_retries_total', type: 'counter', help: 'Reads that failed on a replica and ran again on the primary, by cause, since each router started.', samples: routers.flatMap((r) => Object.entries(r.counters?.retries ?? {}).map(([reason, n]) => ({ labels: { ...routerLabels(r), reason }, value: n }))) },
    { name: 'pgwarden_router_failed_reads_total', type: 'counter', help: 'Reads that failed on every target, since each router started.', samples: routers.map((r) => ({ labels: routerLabels(r), value: r.counters?.failedReads ?? null })) },
    { name: 'pgwarden_poll_duration_seconds', type: 'gauge', unit: 'seconds', help: "Wall time of the collector's last poll (primary and standbys in parallel).", samples: [{ value: seconds(s.poll.wallMs) }] },
    { name: 'pgwarden_poll_queries', type: 'gauge', help: "Queries the collector's last poll ran.", samples: [{ value: s.poll.queries }] },
    { name: 'pgwarden_own_database_seconds', type: 'gauge', unit: 'seconds', help: "Execution time pg_stat_statements counted over the window for all of pgwarden's statements (polls, lag sampler, minute checks, heartbeat).", samples: [{ value: seconds(s.poll.databaseMs) }] },
  ];
}

export function renderMetrics(snapshot: HealthSnapshot | null, state: CollectorState, format: MetricsFormat): string {
  return renderFamilies(snapshotFamilies(snapshot, state), format);
}

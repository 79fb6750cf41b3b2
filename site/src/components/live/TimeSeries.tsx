import { useEffect, useRef } from 'react';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { SeriesPoint } from '../../../../engine/live-health/health-snapshot.ts';
import { yScale, type Span } from '../../lib/chart-scale.ts';

/**
 * One uPlot chart over the last `windowMs`. uPlot is loaded on first mount (a separate chunk, never
 * needed on the static pages) and fed with setData on every new point; the chart follows its panel's
 * width through a ResizeObserver.
 */
export interface Line {
  readonly label: string;
  /** A CSS variable name, e.g. `--series-1`. */
  readonly color: string;
  readonly value: (p: SeriesPoint) => number | null;
  readonly dash?: boolean;
}

export interface TimeSeriesProps {
  readonly id: string;
  readonly title: string;
  readonly hint?: string;
  readonly lines: readonly Line[];
  readonly points: readonly SeriesPoint[];
  readonly windowMs: number;
  readonly format: (v: number) => string;
  /** Axis ticks: shorter than `format` (no decimals where they add nothing). */
  readonly tick?: (v: number) => string;
  /** Fixed y range, when the quantity has one (ratios). */
  readonly yRange?: readonly [number, number];
  /** A horizontal threshold line. */
  readonly threshold?: number;
  /** Spans shaded and labelled on the chart (a standby down: its lag has no value there). */
  readonly marks?: { readonly label: string; readonly spans: readonly Span[] };
  /** Moments drawn as vertical lines across the chart (each plan/apply/maintain run: `#12 apply`). */
  readonly events?: readonly { readonly t: number; readonly label: string }[];
  readonly now: number;
}

function cssVar(el: Element, name: string, fallback: string): string {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

function toData(points: readonly SeriesPoint[], lines: readonly Line[], threshold: number | undefined): uPlot.AlignedData {
  const xs = points.map((p) => p.t / 1000);
  const ys = lines.map((l) => points.map((p) => l.value(p)));
  const extra = threshold === undefined ? [] : [points.map(() => threshold)];
  return [xs, ...ys, ...extra] as uPlot.AlignedData;
}

function scaleOf(p: TimeSeriesProps): ReturnType<typeof yScale> {
  return yScale(
    p.points.flatMap((pt) => p.lines.map((l) => l.value(pt))),
    p.threshold ?? 0,
  );
}

export function TimeSeries(props: TimeSeriesProps) {
  const host = useRef<HTMLDivElement | null>(null);
  const chart = useRef<uPlot | null>(null);
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    let disposed = false;
    let observer: ResizeObserver | null = null;
    void import('uplot').then(({ default: UPlot }) => {
      const el = host.current;
      if (disposed || !el) return;
      const p = latest.current;
      const axis = cssVar(el, '--muted', '#888');
      const grid = cssVar(el, '--grid', 'rgba(128,128,128,0.1)');
      const crit = cssVar(el, '--warn', '#f90');
      const axisStyle: uPlot.Axis = {
        stroke: axis,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        font: '11px Inter, system-ui, sans-serif',
      };
      const series: uPlot.Series[] = [
        {},
        ...p.lines.map((l) => ({
          label: l.label,
          stroke: cssVar(el, l.color, '#5794f2'),
          width: 1.6,
          dash: l.dash ? [4, 3] : undefined,
          points: { show: false },
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : p.format(v)),
        })),
        ...(p.threshold === undefined ? [] : [{ label: 'threshold', stroke: crit, width: 1, dash: [2, 4], points: { show: false }, value: () => (p.threshold === undefined ? '' : p.format(p.threshold)) }]),
      ];
      const opts: uPlot.Options = {
        width: Math.max(200, el.clientWidth),
        height: 170,
        series,
        // The legend is ours (below): it shows each line's latest value, uPlot's only the hovered one.
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 5 } },
        scales: {
          x: { time: true, range: () => [(latest.current.now - latest.current.windowMs) / 1000, latest.current.now / 1000] },
          y: {
            range: (_u, min) => {
              const q = latest.current;
              if (q.yRange) return [q.yRange[0], q.yRange[1]];
              return [Math.min(0, min ?? 0), scaleOf(q).hi];
            },
          },
        },
        axes: [
          {
            ...axisStyle,
            space: 70,
            values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })),
          },
          { ...axisStyle, size: 58, values: (_u, ticks) => ticks.map((t) => (latest.current.tick ?? latest.current.format)(t)) },
        ],
      };
      const markFill = cssVar(el, '--crit-bg', 'rgba(220,50,50,0.12)');
      const markText = cssVar(el, '--crit', '#d33');
      const eventColor = cssVar(el, '--accent', '#5794f2');
      opts.hooks = {
        // Shaded spans under the lines, with their label: a gap in a line then says why it is there.
        drawAxes: [
          (u: uPlot) => {
            const marks = latest.current.marks;
            const { ctx } = u;
            ctx.save();
            for (const event of latest.current.events ?? []) {
              const x = u.valToPos(event.t / 1000, 'x', true);
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.strokeStyle = eventColor;
              ctx.lineWidth = devicePixelRatio;
              ctx.setLineDash([3 * devicePixelRatio, 3 * devicePixelRatio]);
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.setLineDash([]);
              ctx.fillStyle = eventColor;
              ctx.font = `${10 * devicePixelRatio}px Inter, system-ui, sans-serif`;
              ctx.fillText(event.label, x + 3 * devicePixelRatio, u.bbox.top + u.bbox.height - 4 * devicePixelRatio);
            }
            if (!marks) {
              ctx.restore();
              return;
            }
            for (const span of marks.spans) {
              const x0 = Math.max(u.bbox.left, u.valToPos(span.from / 1000, 'x', true));
              const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(span.to / 1000, 'x', true));
              if (x1 <= u.bbox.left || x0 >= u.bbox.left + u.bbox.width) continue;
              ctx.fillStyle = markFill;
              ctx.fillRect(x0, u.bbox.top, Math.max(2 * devicePixelRatio, x1 - x0), u.bbox.height);
              ctx.fillStyle = markText;
              ctx.font = `${11 * devicePixelRatio}px Inter, system-ui, sans-serif`;
              ctx.fillText(marks.label, x0 + 4 * devicePixelRatio, u.bbox.top + 13 * devicePixelRatio);
            }
            ctx.restore();
          },
        ],
      };
      chart.current = new UPlot(opts, toData(p.points, p.lines, p.threshold), el);
      observer = new ResizeObserver(() => {
        if (chart.current && host.current) chart.current.setSize({ width: Math.max(200, host.current.clientWidth), height: 170 });
      });
      observer.observe(el);
    });
    return () => {
      disposed = true;
      observer?.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
  }, []);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    // Resetting the scales re-runs both range functions: x follows the clock, y the data.
    c.setData(toData(props.points, props.lines, props.threshold));
  }, [props.points, props.now]);

  return (
    <div className="panel chart" data-testid={`chart-${props.id}`}>
      <div className="panel-title">
        <h3>{props.title}</h3>
        {props.hint ? <span className="hint">{props.hint}</span> : null}
      </div>
      <div ref={host} className="chart-host" />
      <div className="legend">
        {props.lines.map((l) => {
          const last = [...props.points].reverse().find((p) => l.value(p) !== null);
          const v = last ? l.value(last) : null;
          return (
            <span key={l.label} className="legend-item">
              <span className={`legend-swatch${l.dash ? ' dashed' : ''}`} style={{ background: `var(${l.color})`, borderColor: `var(${l.color})` }} />
              {l.label} <span className="legend-value">{v === null ? '—' : props.format(v)}</span>
            </span>
          );
        })}
        {(() => {
          const clipped = props.yRange ? null : scaleOf(props).clipped;
          return clipped === null ? null : (
            <span className="legend-item" data-testid="chart-off-scale">
              peak {props.format(clipped)} (off the scale)
            </span>
          );
        })()}
        {props.marks && props.marks.spans.length > 0 ? (
          <span className="legend-item legend-mark" data-testid="chart-mark">
            <span className="legend-swatch" style={{ background: 'var(--crit-bg)', height: 10 }} />
            {props.marks.label}: {props.marks.spans.map((sp) => new Date(sp.from).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })).join(', ')}
          </span>
        ) : null}
        {props.threshold !== undefined ? (
          <span className="legend-item">
            <span className="legend-swatch dashed" style={{ borderColor: 'var(--warn)' }} />
            threshold {props.format(props.threshold)}
          </span>
        ) : null}
      </div>
    </div>
  );
}

import type { Level } from '../../../../engine/live-health/health-status.ts';

/**
 * A 240° arc gauge drawn in SVG: the track carries the threshold bands (green / amber / red), the
 * needle arc the value, coloured by the debounced status level.
 */
export interface GaugeBand {
  readonly from: number;
  readonly to: number;
  readonly level: 'ok' | 'warn' | 'critical';
}

export interface GaugeProps {
  readonly id: string;
  readonly label: string;
  readonly value: number | null;
  /** The value as text ("99.4%", "12 ms"). */
  readonly text: string;
  readonly sub: string;
  /** Maps a value to 0..1 along the arc. */
  readonly position: (value: number) => number;
  readonly bands: readonly GaugeBand[];
  readonly level: Level;
}

const START = 150; // degrees, clockwise from the positive x axis (SVG's y points down)
const SWEEP = 240;
const R = 44; // the value arc
const RB = 52; // the threshold ring, outside it
const CX = 60;
const CY = 58;

function point(fraction: number, r: number): [number, number] {
  const a = ((START + SWEEP * Math.min(1, Math.max(0, fraction))) * Math.PI) / 180;
  return [CX + r * Math.cos(a), CY + r * Math.sin(a)];
}

function arc(from: number, to: number, r = R): string {
  const [x1, y1] = point(from, r);
  const [x2, y2] = point(to, r);
  const large = (to - from) * SWEEP > 180 ? 1 : 0;
  return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
}

const COLOR: Record<Level, string> = { ok: 'var(--ok)', warn: 'var(--warn)', critical: 'var(--crit)', unknown: 'var(--faint)' };

export function Gauge(props: GaugeProps) {
  const fraction = props.value === null ? 0 : props.position(props.value);
  return (
    <div className="panel gauge" data-testid={`gauge-${props.id}`} data-value={props.value === null ? '' : String(props.value)} data-level={props.level}>
      <div className="gauge-label">{props.label}</div>
      <svg viewBox="0 0 120 104" role="img" aria-label={`${props.label}: ${props.text}`}>
        <path d={arc(0, 1)} className="gauge-track" />
        {props.bands
          .filter((b) => props.position(b.to) - props.position(b.from) > 0.001)
          .map((b) => (
            <path key={`${b.from}-${b.to}`} d={arc(props.position(b.from), props.position(b.to), RB)} className={`gauge-band ${b.level}`} />
          ))}
        {props.value !== null && fraction > 0.002 ? <path d={arc(0, fraction)} className="gauge-value" style={{ stroke: COLOR[props.level] }} /> : null}
        <text x={CX} y={CY + 5} className="gauge-text" style={{ fill: props.value === null ? 'var(--faint)' : COLOR[props.level] }}>
          {props.text}
        </text>
        <text x={CX} y={CY + 38} className="gauge-sub">
          {props.sub}
        </text>
      </svg>
    </div>
  );
}

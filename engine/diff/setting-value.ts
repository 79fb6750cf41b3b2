import type { SettingRow } from '../catalog/replica-queries.ts';

/**
 * A setting's value the way PostgreSQL reads it (guc.c), so that `30s`, `30000` and `0.5min` for
 * max_standby_streaming_delay compare equal to pg_settings' `30000` (unit ms). The type, the base unit,
 * the bounds and the enum values all come from the server's pg_settings; nothing here hard-codes a
 * setting. (set_config() cannot be used to ask the server instead: it refuses sighup settings.)
 */
export type SettingValue = { readonly ok: true; readonly canonical: string } | { readonly ok: false; readonly message: string };

// guc.c's unit tables: memory units are powers of 1024 and case-sensitive; time units likewise.
const MEMORY_BYTES: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const TIME_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** pg_settings.unit, e.g. `8kB`, `ms`, `s`: how many bytes or milliseconds one base unit is. */
function baseUnit(unit: string | null): { readonly kind: 'memory' | 'time'; readonly size: number } | null {
  if (unit === null) return null;
  const m = /^(\d*)(B|kB|MB|GB|TB|us|ms|s|min|h|d)$/u.exec(unit);
  if (!m?.[2]) return null;
  const count = m[1] ? Number(m[1]) : 1;
  const memory = MEMORY_BYTES[m[2]];
  if (memory !== undefined) return { kind: 'memory', size: count * memory };
  return { kind: 'time', size: count * (TIME_MS[m[2]] ?? 1) };
}

/** parse_bool: true/false/yes/no/on/off/1/0, any case, and prefixes of all but on/off ("t", "n", "of"). */
function parseBool(text: string): boolean | null {
  const v = text.trim().toLowerCase();
  if (v === '') return null;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === 'on' || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || (v.length >= 2 && 'off'.startsWith(v)) || v === '0') return false;
  return null;
}

/** A number with an optional unit, in the setting's base unit, unrounded. */
function parseQuantity(text: string, row: SettingRow): number | string {
  const m = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$/u.exec(text);
  if (!m?.[1]) return `${JSON.stringify(text)} is not a number`;
  const n = Number(m[1]);
  const unit = m[2] ?? '';
  if (unit === '') return n;
  const base = baseUnit(row.unit);
  if (base === null) return `${row.name} takes no unit, got ${JSON.stringify(unit)}`;
  const factor = base.kind === 'memory' ? MEMORY_BYTES[unit] : TIME_MS[unit];
  if (factor === undefined) {
    const valid = base.kind === 'memory' ? 'B, kB, MB, GB and TB' : 'us, ms, s, min, h and d';
    return `invalid unit ${JSON.stringify(unit)} for ${row.name} (valid units: ${valid}; memory units are case-sensitive)`;
  }
  return (n * factor) / base.size;
}

function inRange(n: number, row: SettingRow): string | null {
  const min = row.min_val === null ? -Infinity : Number(row.min_val);
  const max = row.max_val === null ? Infinity : Number(row.max_val);
  if (n >= min && n <= max) return null;
  return `${row.name} must be between ${row.min_val} and ${row.max_val}${row.unit ? ` (in ${row.unit})` : ''}, got ${n}`;
}

export function canonicalSetting(text: string, row: SettingRow): SettingValue {
  switch (row.vartype) {
    case 'bool': {
      const b = parseBool(text);
      return b === null ? { ok: false, message: `${row.name} takes on or off, got ${JSON.stringify(text)}` } : { ok: true, canonical: b ? 'on' : 'off' };
    }
    case 'enum': {
      const value = text.trim().toLowerCase();
      const found = (row.enumvals ?? []).find((v) => v.toLowerCase() === value);
      return found === undefined
        ? { ok: false, message: `${row.name} must be one of ${(row.enumvals ?? []).join(', ')}, got ${JSON.stringify(text)}` }
        : { ok: true, canonical: found };
    }
    case 'integer':
    case 'real': {
      const q = parseQuantity(text, row);
      if (typeof q === 'string') return { ok: false, message: q };
      // PostgreSQL 12+ rounds a value given in a finer unit to the nearest base unit (integer settings).
      const n = row.vartype === 'integer' ? Math.round(q) : q;
      const outside = inRange(n, row);
      return outside === null ? { ok: true, canonical: String(n) } : { ok: false, message: outside };
    }
    case 'string':
      return { ok: true, canonical: text };
  }
}

/** pg_settings' own value, put in the same canonical form. */
export function canonicalActual(row: SettingRow): string | null {
  if (row.setting === null) return null;
  if (row.vartype === 'real' || row.vartype === 'integer') return String(Number(row.setting));
  if (row.vartype === 'enum') return row.setting.toLowerCase();
  return row.setting;
}

/** The current value as SHOW prints it: `30s` rather than `30000` ms, `64MB` rather than `8192` x 8kB. */
export function showSetting(row: SettingRow): string | null {
  if (row.setting === null) return null;
  const base = baseUnit(row.unit);
  const n = Number(row.setting);
  if (base === null || !Number.isFinite(n) || n < 0 || !Number.isInteger(n)) return row.setting;
  const total = n * base.size;
  const units = base.kind === 'memory' ? Object.entries(MEMORY_BYTES) : Object.entries(TIME_MS).filter(([u]) => u !== 'us');
  const [unit, size] = [...units].reverse().find(([, s]) => total % s === 0 && total >= s) ?? units[0] ?? ['', 1];
  return total === 0 ? `0` : `${total / size}${unit}`;
}

import type { TableStatistics } from '../catalog/actual.ts';
import { governance, healthReason, tableHealthOf } from '../vacuum-health/table-health.ts';
import type { DesiredState } from '../policy/desired.ts';
import { DEFAULT_MIN_HEALTH } from '../policy/vacuum-policy.ts';
import type { Warning } from './change.ts';

const MAX_FLOOR_WARNINGS = 20;

/**
 * The plan's warnings for governed tables below their health floor. Pure: the statistics were read with
 * the rest of the actual state (only when a vacuum policy exists; null otherwise).
 */
export function healthFloorWarnings(desired: DesiredState, statistics: TableStatistics | null): Warning[] {
  if (statistics === null) return [];
  const governed = governance(desired, statistics.stats);
  const below = tableHealthOf(statistics.settings, statistics.stats).flatMap((h) => {
    const g = governed.get(h.oid);
    const floor = g?.vacuum.minHealth ?? DEFAULT_MIN_HEALTH;
    return g !== undefined && h.health < floor ? [{ h, g, floor }] : [];
  });
  const warnings: Warning[] = below.slice(0, MAX_FLOOR_WARNINGS).map(({ h, g, floor }) => ({
    address: `health:${h.schema}.${h.name}`,
    source: g.vacuum.source,
    message: `${h.schema}.${h.name} has health ${h.health.toFixed(2)}, below its floor ${floor.toFixed(2)} (${healthReason(h)}); \`pgwarden maintain\` restores it`,
  }));
  if (below.length > MAX_FLOOR_WARNINGS) {
    warnings.push({ address: 'health:*', message: `${below.length - MAX_FLOOR_WARNINGS} more tables are below their health floor; \`pgwarden health\` lists them all` });
  }
  return warnings;
}

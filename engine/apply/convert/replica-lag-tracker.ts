import type pg from 'pg';
import { REPLICA_POSITION_SQL, type ReplicaPositionRow } from '../../catalog/conversion-queries.ts';

/**
 * The copy's view of how far the standbys are behind, from the primary alone. Each reading notes the
 * primary's WAL position with the primary's time; the lag is how long the oldest noted position had
 * gone unreplayed when the standby furthest behind last reported (a lower bound: that WAL was written
 * at or before it was noted, and was still not replayed at the report). It grows while replay stands
 * still, where `replay_lag` keeps its last value, and it is 0 once every standby replayed what the
 * primary had. A report's time is the standby's clock: a standby whose clock is behind looks less late.
 */
export class ReplicaLagTracker {
  private readonly seen: { bytes: bigint; at: number }[] = [];

  /** The lag in ms, or null when no standby streams (a standby that went away is not waited for). */
  async read(client: pg.ClientBase): Promise<number | null> {
    const row = (await client.query<ReplicaPositionRow>(REPLICA_POSITION_SQL)).rows[0];
    if (!row || row.standbys === 0) {
      this.seen.length = 0;
      return null;
    }
    const current = BigInt(row.current_bytes);
    const last = this.seen[this.seen.length - 1];
    if (!last || current > last.bytes) this.seen.push({ bytes: current, at: row.now_ms });
    // Without pg_read_all_stats the positions are hidden: only what PostgreSQL measured is left.
    if (row.replayed_bytes === null || row.reply_ms === null) return row.reported_lag_ms ?? 0;
    const replayed = BigInt(row.replayed_bytes);
    while (this.seen.length > 0 && this.seen[0]!.bytes <= replayed) this.seen.shift();
    const oldest = this.seen[0];
    if (oldest === undefined) return 0;
    return Math.max(0, Math.min(row.now_ms, row.reply_ms) - oldest.at);
  }
}

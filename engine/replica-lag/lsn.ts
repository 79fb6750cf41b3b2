/**
 * WAL positions (`pg_lsn`, written `16/B374D848`): the high and low 32 bits in hex. Compared and
 * subtracted here, as pg_wal_lsn_diff() does, when the two positions come from different servers.
 */
export type Lsn = bigint;

export function parseLsn(text: string | null | undefined): Lsn | null {
  if (text === null || text === undefined) return null;
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/u.exec(text);
  if (!m) return null;
  return (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`);
}

/** `a - b` in bytes, as a number (exact below 2^53 bytes, i.e. always in practice). */
export function lsnDiff(a: Lsn, b: Lsn): number {
  return Number(a - b);
}

/**
 * What libpq's target_session_attrs asks of a freshly opened session. libpq reads the
 * `in_hot_standby` and `default_transaction_read_only` parameters a PostgreSQL 14+ server reports at
 * startup, and runs these same checks as queries on older servers; node-postgres does not expose the
 * reported parameters, so pgwarden always asks.
 */
export const SESSION_ATTRIBUTES_SQL = `
SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,
       pg_catalog.current_setting('transaction_read_only') = 'on' AS read_only`;

export interface SessionAttributesRow {
  in_recovery: boolean;
  read_only: boolean;
}

import type pg from 'pg';
import type { ReplicaStep } from '../plan/routing-steps.ts';

/**
 * `pgwarden.managed_replica_setting`, on the primary (the replicas are read-only): the standby settings
 * pgwarden set with ALTER SYSTEM, so that one leaving the policy is reset only if pgwarden set it.
 * Created on first use, so databases without a routing policy never get it.
 */
export const REPLICA_SETTING_REGISTRY_SQL = `
CREATE TABLE IF NOT EXISTS pgwarden.managed_replica_setting (
  replica_name text NOT NULL,
  setting_name text NOT NULL,
  value text NOT NULL,
  policy_file text,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (replica_name, setting_name))`;

/**
 * Creates the registry if it is missing (one round trip). Apply has created the schema already
 * (ensurePgwardenSchema), which is also what lets a role without CREATE on the database use a schema made for it.
 */
export async function ensureReplicaSettingRegistry(primary: pg.ClientBase): Promise<void> {
  await primary.query(REPLICA_SETTING_REGISTRY_SQL);
}

/** Records a setting a step set, or forgets one it reset. */
export async function writeReplicaSetting(primary: pg.ClientBase, step: ReplicaStep): Promise<void> {
  if (step.action === 'set') {
    await primary.query(
      `INSERT INTO pgwarden.managed_replica_setting (replica_name, setting_name, value, policy_file)
       VALUES ($1, $2, $3, $4)
       ON CONFLICT (replica_name, setting_name) DO UPDATE
         SET value = EXCLUDED.value, policy_file = EXCLUDED.policy_file, recorded_at = now()`,
      [step.replica.name, step.setting, step.value ?? '', step.policyFile ?? null],
    );
    return;
  }
  await primary.query('DELETE FROM pgwarden.managed_replica_setting WHERE replica_name = $1 AND setting_name = $2', [step.replica.name, step.setting]);
}

import type pg from 'pg';

/**
 * The ids the workload draws its parameters from, read once before it starts. Ids stay strings (as
 * `pg` returns bigint) and go back as bind values unchanged.
 */
export interface WorkloadContext {
  /** Ascending, so index 0 is the largest tenant, as the loader ranks them. */
  readonly tenantIds: readonly string[];
  /** Each tenant's servers, ascending: the loader's chattiest hosts come first. */
  readonly serversByTenant: ReadonlyMap<string, readonly string[]>;
  readonly serverIds: readonly string[];
  readonly deploymentIds: readonly string[];
  /** When the data's history ends: time windows ("a day of events") are drawn back from here. */
  readonly historyEnd: Date;
}

export async function readWorkloadContext(pool: pg.Pool): Promise<WorkloadContext> {
  const [tenants, servers, deployments, latest] = await Promise.all([
    pool.query<{ id: string }>('SELECT id FROM public.tenants ORDER BY id'),
    pool.query<{ id: string; tenant_id: string }>('SELECT id, tenant_id FROM public.servers ORDER BY tenant_id, id'),
    pool.query<{ id: string }>('SELECT id FROM public.deployments ORDER BY id'),
    // The newest event by id walks the primary key backwards; max(created_at) would scan the table.
    pool.query<{ created_at: Date }>('SELECT created_at FROM public.events ORDER BY id DESC LIMIT 1'),
  ]);
  if (tenants.rows.length === 0 || servers.rows.length === 0 || deployments.rows.length === 0) {
    throw new Error('the example data is missing; load it first with engine/example/load.ts');
  }
  const serversByTenant = new Map<string, string[]>();
  for (const { id, tenant_id } of servers.rows) {
    const list = serversByTenant.get(tenant_id);
    if (list === undefined) serversByTenant.set(tenant_id, [id]);
    else list.push(id);
  }
  return {
    tenantIds: tenants.rows.map((row) => row.id),
    serversByTenant,
    serverIds: servers.rows.map((row) => row.id),
    deploymentIds: deployments.rows.map((row) => row.id),
    historyEnd: latest.rows[0]?.created_at ?? new Date(),
  };
}

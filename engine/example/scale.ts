/** How much example data to generate. */
export type ExampleScale = 'small' | 'demo';

/** Rows generated per table, before churn deletes some servers and deployments. */
export interface ScaleSize {
  readonly tenants: number;
  readonly servers: number;
  readonly deployments: number;
  readonly incidents: number;
  readonly events: number;
}

export const SCALE_SIZES: Readonly<Record<ExampleScale, ScaleSize>> = {
  // Seconds to load: what the tests use.
  small: { tenants: 50, servers: 500, deployments: 5_000, incidents: 1_500, events: 200_000 },
  // Large enough that a tenant's recent events take a parallel sequential scan of hundreds of
  // milliseconds without pgwarden's index, and about a millisecond with it.
  demo: { tenants: 500, servers: 5_000, deployments: 50_000, incidents: 15_000, events: 2_500_000 },
};

export function isExampleScale(value: string): value is ExampleScale {
  return value === 'small' || value === 'demo';
}

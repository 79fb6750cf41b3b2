/**
 * The shape of the example data, shared by the loader (which hands these values to PostgreSQL as bind
 * parameters) and the workload (which draws its parameters the same way), so that the API traffic hits
 * the big tenants as often as their share of the data says it should.
 *
 * Every skewed choice is a "power draw": with `u` uniform in [0, 1), `floor(count * u ** exponent)` picks
 * index 0 with the highest probability and the last index with the lowest. Item `i` gets the share
 * `((i + 1) / count) ** (1 / exponent) - (i / count) ** (1 / exponent)`.
 */

/** Tenants: the top 10% get 0.1 ** (1 / 4) ≈ 56% of the activity, the top one alone ≈ 38% of 50 tenants. */
export const TENANT_EXPONENT = 4;
/** Servers inside a tenant: a few chatty hosts produce most of its events. */
export const SERVER_EXPONENT = 2;
/** Event kinds, most frequent first. */
export const KIND_EXPONENT = 2;

/** Event kinds in decreasing frequency; the first takes ≈ 32%, the last ≈ 5%. */
export const EVENT_KINDS: readonly string[] = [
  'metric.threshold',
  'health.check_failed',
  'deploy.finished',
  'deploy.started',
  'alert.fired',
  'alert.resolved',
  'config.changed',
  'autoscale.triggered',
  'ssh.login',
  'backup.completed',
];

export const SERVER_ROLES: readonly string[] = ['web', 'worker', 'db', 'cache', 'lb', 'batch'];
export const REGIONS: readonly string[] = ['eu-west-1', 'us-east-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1'];
export const SERVICES: readonly string[] = ['api', 'web', 'billing', 'search', 'notifications', 'auth', 'reports', 'ingest'];
export const COMPANY_WORDS: readonly string[] = [
  'acme', 'globex', 'initech', 'umbrella', 'stark', 'wayne', 'tyrell', 'cyberdyne', 'hooli', 'vandelay',
  'soylent', 'wonka', 'aperture', 'massive', 'oscorp', 'pied-piper', 'dunder', 'monarch', 'gringotts', 'nakatomi',
];
export const INCIDENT_TITLES: readonly string[] = [
  'High CPU usage',
  'Elevated error rate',
  'Disk almost full',
  'Memory pressure',
  'Replica lag above threshold',
  'Health checks failing after deploy',
  'TLS certificate expiring',
  'Packet loss between zones',
];

/** `floor(count * u ** exponent)`, clamped so that u = 1 - ε can never reach `count`. */
export function powerIndex(u: number, count: number, exponent: number): number {
  return Math.min(count - 1, Math.floor(count * u ** exponent));
}

/**
 * libpq's connection keywords (PostgreSQL 17's list), the environment variable that sets each one, and
 * whether pgwarden honours it. A keyword libpq does not know is an error, as in libpq; one pgwarden cannot
 * honour with node-postgres is an error too, rather than a connection made differently from `psql`'s.
 */
export interface LibpqOption {
  readonly keyword: string;
  readonly env?: string;
  /** Values pgwarden honours; `undefined`: any value. An empty list: the keyword is not supported at all. */
  readonly supported?: readonly string[];
}

export const LIBPQ_OPTIONS: readonly LibpqOption[] = [
  { keyword: 'host', env: 'PGHOST' },
  { keyword: 'hostaddr', env: 'PGHOSTADDR' },
  { keyword: 'port', env: 'PGPORT' },
  { keyword: 'dbname', env: 'PGDATABASE' },
  { keyword: 'user', env: 'PGUSER' },
  { keyword: 'password', env: 'PGPASSWORD' },
  { keyword: 'passfile', env: 'PGPASSFILE' },
  { keyword: 'service', env: 'PGSERVICE' },
  { keyword: 'connect_timeout', env: 'PGCONNECT_TIMEOUT' },
  { keyword: 'client_encoding', env: 'PGCLIENTENCODING' },
  { keyword: 'options', env: 'PGOPTIONS' },
  { keyword: 'application_name', env: 'PGAPPNAME' },
  { keyword: 'fallback_application_name' },
  { keyword: 'keepalives', supported: ['0', '1'] },
  { keyword: 'keepalives_idle' },
  { keyword: 'sslmode', env: 'PGSSLMODE', supported: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] },
  { keyword: 'requiressl', env: 'PGREQUIRESSL', supported: ['0', '1'] },
  { keyword: 'sslnegotiation', env: 'PGSSLNEGOTIATION', supported: ['postgres', 'direct'] },
  // OpenSSL has compiled compression out for years; libpq 16 ignores the keyword.
  { keyword: 'sslcompression', env: 'PGSSLCOMPRESSION' },
  { keyword: 'sslcert', env: 'PGSSLCERT' },
  { keyword: 'sslkey', env: 'PGSSLKEY' },
  { keyword: 'sslpassword' },
  { keyword: 'sslrootcert', env: 'PGSSLROOTCERT' },
  { keyword: 'sslsni', env: 'PGSSLSNI', supported: ['1'] },
  { keyword: 'ssl_min_protocol_version', env: 'PGSSLMINPROTOCOLVERSION', supported: ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] },
  { keyword: 'ssl_max_protocol_version', env: 'PGSSLMAXPROTOCOLVERSION', supported: ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] },
  { keyword: 'sslcertmode', env: 'PGSSLCERTMODE', supported: ['allow'] },
  { keyword: 'sslcrl', env: 'PGSSLCRL', supported: [] },
  { keyword: 'sslcrldir', env: 'PGSSLCRLDIR', supported: [] },
  { keyword: 'sslkeylogfile', supported: [] },
  // No GSSAPI here: "prefer" then falls back exactly as libpq does without Kerberos credentials.
  { keyword: 'gssencmode', env: 'PGGSSENCMODE', supported: ['disable', 'prefer'] },
  { keyword: 'krbsrvname', env: 'PGKRBSRVNAME', supported: [] },
  { keyword: 'gsslib', env: 'PGGSSLIB', supported: [] },
  { keyword: 'gssdelegation', env: 'PGGSSDELEGATION', supported: ['0'] },
  { keyword: 'channel_binding', env: 'PGCHANNELBINDING', supported: ['disable', 'prefer'] },
  { keyword: 'require_auth', env: 'PGREQUIREAUTH', supported: [] },
  { keyword: 'requirepeer', env: 'PGREQUIREPEER', supported: [] },
  { keyword: 'target_session_attrs', env: 'PGTARGETSESSIONATTRS', supported: ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] },
  { keyword: 'load_balance_hosts', env: 'PGLOADBALANCEHOSTS', supported: ['disable', 'random'] },
  { keyword: 'replication', supported: [] },
  { keyword: 'tcp_user_timeout', supported: [] },
  { keyword: 'keepalives_interval', supported: [] },
  { keyword: 'keepalives_count', supported: [] },
];

export const LIBPQ_KEYWORDS: ReadonlyMap<string, LibpqOption> = new Map(LIBPQ_OPTIONS.map((o) => [o.keyword, o]));

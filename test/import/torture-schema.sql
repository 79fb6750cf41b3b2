-- Everything PostgreSQL 16 can build into an index that the embedded server supports.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA app;
CREATE SCHEMA "Odd Schema";
CREATE COLLATION app.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE FUNCTION app.norm(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(btrim(t)) $$;

CREATE TABLE app.accounts (
  id bigint PRIMARY KEY,
  email text NOT NULL,
  handle text COLLATE app.ci,
  name varchar(200),
  tenant int NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  status text,
  tags text[],
  payload jsonb,
  doc tsvector,
  span tstzrange,
  spot point,
  ip inet,
  CONSTRAINT accounts_email_key UNIQUE (email),
  CONSTRAINT accounts_no_overlap EXCLUDE USING gist (tenant WITH =, span WITH &&)
);
CREATE INDEX accounts_tenant_created_idx ON app.accounts (tenant, created_at DESC) INCLUDE (status) WHERE deleted_at IS NULL;
CREATE INDEX accounts_created_nulls_idx ON app.accounts (created_at NULLS FIRST, deleted_at DESC NULLS LAST);
CREATE UNIQUE INDEX accounts_handle_uniq ON app.accounts (handle) NULLS NOT DISTINCT;
CREATE INDEX accounts_lower_email_idx ON app.accounts (lower(email) text_pattern_ops);
CREATE INDEX accounts_norm_idx ON app.accounts (app.norm(email)) WITH (fillfactor = 70, deduplicate_items = off);
CREATE INDEX accounts_name_c_idx ON app.accounts (name COLLATE "C" DESC);
CREATE INDEX accounts_email_trgm ON app.accounts USING gin (email gin_trgm_ops) WITH (fastupdate = off, gin_pending_list_limit = 256);
CREATE INDEX accounts_email_gist_trgm ON app.accounts USING gist (email gist_trgm_ops(siglen = 32));
CREATE INDEX accounts_tags_gin ON app.accounts USING gin (tags);
CREATE INDEX accounts_payload_path ON app.accounts USING gin (payload jsonb_path_ops);
CREATE INDEX accounts_doc_gin ON app.accounts USING gin (doc);
CREATE INDEX accounts_tenant_btree_gin ON app.accounts USING gin (tenant, tags);
CREATE INDEX accounts_span_gist ON app.accounts USING gist (span) WITH (buffering = on, fillfactor = 80);
CREATE INDEX accounts_tenant_span_gist ON app.accounts USING gist (tenant, span) INCLUDE (status);
CREATE INDEX accounts_spot_spgist ON app.accounts USING spgist (spot) WITH (fillfactor = 60);
CREATE INDEX accounts_ip_spgist ON app.accounts USING spgist (ip inet_ops);
CREATE INDEX accounts_created_brin ON app.accounts USING brin (created_at) WITH (pages_per_range = 32, autosummarize = on);
CREATE INDEX accounts_email_hash ON app.accounts USING hash (email) WITH (fillfactor = 60);
CREATE INDEX accounts_payload_expr ON app.accounts ((payload ->> 'kind'), (payload -> 'n')) WHERE payload ? 'kind';
CREATE INDEX accounts_handle_ci ON app.accounts (handle COLLATE "C");
ALTER TABLE app.accounts SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_enabled = true, fillfactor = 90, toast.autovacuum_vacuum_cost_delay = 5);

CREATE TABLE "Odd Schema"."User Table" ("User Id" int, "select" text, "größe" numeric, "a""b" int);
CREATE INDEX "Odd Index" ON "Odd Schema"."User Table" ("User Id" DESC, "select");
CREATE INDEX "größe_idx" ON "Odd Schema"."User Table" ("größe") WHERE "größe" > 0;
CREATE INDEX "quote""idx" ON "Odd Schema"."User Table" ("a""b") INCLUDE ("select");

-- Range by month, aligned, named the default way, with a default partition: last month, this month
-- and the next one (UTC), whenever the test runs.
CREATE TABLE app.events (tenant int, kind text, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
DO $$
DECLARE
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  m timestamp;
BEGIN
  FOR i IN -1..1 LOOP
    m := this_month + make_interval(months => i);
    EXECUTE format('CREATE TABLE app.%I PARTITION OF app.events FOR VALUES FROM (%L) TO (%L)',
                   'events_' || to_char(m, 'YYYY_MM'), to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(m + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
  END LOOP;
  -- A partition's own index, not attached to any index of the parent.
  EXECUTE format('CREATE INDEX %I ON app.%I (kind)', 'events_' || to_char(this_month, 'YYYY_MM') || '_kind_idx', 'events_' || to_char(this_month, 'YYYY_MM'));
END $$;
CREATE TABLE app.events_default PARTITION OF app.events DEFAULT;
-- Daily partitions of a date key, named <table>_pYYYYMMDD: today and tomorrow (UTC).
CREATE TABLE app.audit (at date NOT NULL, what text) PARTITION BY RANGE (at);
DO $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
  FOR i IN 0..1 LOOP
    EXECUTE format('CREATE TABLE app.%I PARTITION OF app.audit FOR VALUES FROM (%L) TO (%L)', 'audit_p' || to_char(today + i, 'YYYYMMDD'), today + i, today + i + 1);
  END LOOP;
END $$;
CREATE INDEX events_tenant_idx ON app.events (tenant, created_at DESC);
CREATE INDEX events_kind_brin ON app.events USING brin (created_at);

-- List, hash and sub-partitioned tables with parent indexes.
CREATE TABLE app.regions (region text, id int) PARTITION BY LIST (region);
CREATE TABLE app.regions_eu PARTITION OF app.regions FOR VALUES IN ('eu');
CREATE TABLE app.regions_us PARTITION OF app.regions FOR VALUES IN ('us');
CREATE INDEX regions_id_idx ON app.regions (id);
CREATE TABLE app.shards (id int, v text) PARTITION BY HASH (id);
CREATE TABLE app.shards_0 PARTITION OF app.shards FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE app.shards_1 PARTITION OF app.shards FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE INDEX shards_v_idx ON app.shards USING hash (v);
CREATE TABLE app.metrics (tenant int, at date NOT NULL, v float8) PARTITION BY RANGE (at);
CREATE TABLE app.metrics_2026 PARTITION OF app.metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (tenant);
CREATE TABLE app.metrics_2026_a PARTITION OF app.metrics_2026 FOR VALUES IN (1, 2);
CREATE TABLE app.metrics_2026_b PARTITION OF app.metrics_2026 DEFAULT;
CREATE INDEX metrics_tenant_at_idx ON app.metrics (tenant, at) WITH (fillfactor = 75);
-- An irregular range.
CREATE TABLE public.readings (at timestamp NOT NULL, v int) PARTITION BY RANGE (at);
CREATE TABLE public.readings_a PARTITION OF public.readings FOR VALUES FROM ('2026-01-01') TO ('2026-01-11');
CREATE INDEX readings_v_idx ON public.readings (v);

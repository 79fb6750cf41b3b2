#!/usr/bin/env bash
# Primary, first start only: the postgres image runs this from /docker-entrypoint-initdb.d while
# the data directory is being initialised (socket-only temporary server, local trust auth).
#
# - creates the replication role and the physical replication slot the standby streams from;
# - creates pg_stat_statements in POSTGRES_DB (the library is preloaded by the compose command);
# - lets that role replicate from the compose network only (`samenet`: the subnets this
#   container is attached to). The image's own "host all all all ..." line does not match
#   replication connections, so without this line pg_basebackup is refused.
#
# Every value comes from the environment (.env via docker-compose.yml): no secret here. Values
# reach SQL as psql variables (:"ident" / :'literal'), never spliced into the SQL text.
#
# The image runs this file when it is executable and *sources* it otherwise, so it changes no
# shell option and never calls exit: failures return non-zero from the function, and a missing
# variable fails through ${VAR:?}; either way initialisation stops with an error.

pgwarden_primary_init() {
	local repl_user="${REPLICATION_USER:?REPLICATION_USER is not set (cp .env.example .env)}"
	local repl_password="${REPLICATION_PASSWORD:?REPLICATION_PASSWORD is not set (cp .env.example .env)}"
	local repl_slot="${REPLICATION_SLOT:?REPLICATION_SLOT is not set}"

	psql -v ON_ERROR_STOP=1 --no-psqlrc \
		--username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
		-v repl_user="$repl_user" \
		-v repl_password="$repl_password" \
		-v repl_slot="$repl_slot" <<-'EOSQL' || return 1
		CREATE ROLE :"repl_user" WITH REPLICATION LOGIN PASSWORD :'repl_password';
		SELECT pg_create_physical_replication_slot(:'repl_slot');
		CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
	EOSQL

	local quoted_user="\"${repl_user//\"/\"\"}\""
	{
		echo
		echo '# pgwarden: streaming replication for the hot standby, from the compose network only'
		echo "host replication ${quoted_user} samenet scram-sha-256"
	} >>"$PGDATA/pg_hba.conf" || return 1

	echo "pgwarden: replication role, slot '${repl_slot}' and pg_hba replication line ready"
}

pgwarden_primary_init

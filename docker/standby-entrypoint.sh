#!/usr/bin/env bash
# Hot standby entrypoint (runs as root, like the postgres image's own entrypoint).
#
# First start (no PG_VERSION in PGDATA): wait for the primary, clone it with
#   pg_basebackup --write-recovery-conf --slot=...
# which writes standby.signal and primary_conninfo + primary_slot_name into
# postgresql.auto.conf, so the standby streams from the primary's physical slot.
# Every start: hand over to the image's docker-entrypoint.sh, which sees an existing
# cluster, skips initdb, drops to the postgres user and execs "$@" (postgres -c ...).
#
# Environment (from docker-compose.yml / .env): PGDATA, PRIMARY_HOST, PRIMARY_PORT,
# REPLICATION_USER, REPLICATION_PASSWORD, REPLICATION_SLOT. No secret in this file.
set -Eeuo pipefail

pgdata="${PGDATA:?PGDATA is not set}"
primary_host="${PRIMARY_HOST:-primary}"
primary_port="${PRIMARY_PORT:-5432}"
repl_user="${REPLICATION_USER:?REPLICATION_USER is not set (cp .env.example .env)}"
repl_password="${REPLICATION_PASSWORD:?REPLICATION_PASSWORD is not set (cp .env.example .env)}"
repl_slot="${REPLICATION_SLOT:?REPLICATION_SLOT is not set}"
wait_seconds="${PRIMARY_WAIT_SECONDS:-120}"

case "$pgdata" in
	/ | /var | /var/lib | /var/lib/postgresql)
		echo "standby: refusing to use PGDATA=$pgdata" >&2
		exit 1
		;;
esac

if [ ! -s "$pgdata/PG_VERSION" ]; then
	echo "standby: no cluster in $pgdata; waiting for the primary at $primary_host:$primary_port"
	waited=0
	until pg_isready -q -h "$primary_host" -p "$primary_port" -U "$repl_user"; do
		if [ "$waited" -ge "$wait_seconds" ]; then
			echo "standby: the primary at $primary_host:$primary_port was not ready after ${wait_seconds}s" >&2
			exit 1
		fi
		sleep 1
		waited=$((waited + 1))
	done

	# Leftovers of an interrupted clone (no PG_VERSION yet) are discarded; pg_basebackup
	# wants an empty or missing directory.
	mkdir -p "$pgdata"
	find "$pgdata" -mindepth 1 -delete
	chown postgres:postgres "$pgdata"
	chmod 0700 "$pgdata"

	echo "standby: cloning the primary with pg_basebackup (slot $repl_slot)"
	# The password reaches pg_basebackup through the environment only; --write-recovery-conf
	# records it in primary_conninfo inside the standby's own (unpublished) data volume.
	PGPASSWORD="$repl_password" gosu postgres pg_basebackup \
		--pgdata="$pgdata" \
		--host="$primary_host" \
		--port="$primary_port" \
		--username="$repl_user" \
		--no-password \
		--wal-method=stream \
		--slot="$repl_slot" \
		--write-recovery-conf \
		--checkpoint=fast

	echo "standby: clone complete; starting as a hot standby"
fi

unset REPLICATION_PASSWORD PGPASSWORD
exec docker-entrypoint.sh "$@"

#!/bin/sh
# PgBouncer entrypoint: writes the auth file from the environment, then runs pgbouncer with the
# mounted docker/pgbouncer.ini (transaction pooling in front of the primary).
#
# The auth file holds the password in plain text ("user" "password", double quotes doubled):
# PgBouncer needs the plain password (or the SCRAM secret) to log in to PostgreSQL with
# scram-sha-256 on the client's behalf. It lives in the container's /tmp, mode 0600, and is
# never committed. PGBOUNCER_AUTH_USER / PGBOUNCER_AUTH_PASSWORD come from .env via compose.
set -eu

: "${PGBOUNCER_AUTH_USER:?PGBOUNCER_AUTH_USER is not set (cp .env.example .env)}"
: "${PGBOUNCER_AUTH_PASSWORD:?PGBOUNCER_AUTH_PASSWORD is not set (cp .env.example .env)}"

auth_file=/tmp/pgbouncer-userlist.txt

quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"
}

umask 077
printf '%s %s\n' "$(quote "$PGBOUNCER_AUTH_USER")" "$(quote "$PGBOUNCER_AUTH_PASSWORD")" >"$auth_file"
unset PGBOUNCER_AUTH_PASSWORD

exec pgbouncer /etc/pgbouncer/pgbouncer.ini

#!/usr/bin/env bash
# Starts a throwaway Postgres on 127.0.0.1 for the gateway's key-store test and prints its URL.
# Installs the server with apt when it is missing. Usage: url=$(scripts/start-test-postgres.sh)
set -euo pipefail
PORT="${HEARTH_TEST_PG_PORT:-55432}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  { apt-get install -y -q postgresql || { apt-get update -q && apt-get install -y -q postgresql; }; } >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=$(mktemp -d /tmp/hearth-pg.XXXXXX)
as_owner() { # Postgres refuses to run as root
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$DATA"; su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
as_owner "$BIN/initdb -D $DATA -A trust -U hearth" >&2
as_owner "$BIN/pg_ctl -D $DATA -l $DATA/log -w -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' start" >&2
echo "postgresql://hearth@127.0.0.1:$PORT/postgres"

#!/bin/sh
# First start: a cluster owned by POSTGRES_USER with the password POSTGRES_PASSWORD (or
# the file POSTGRES_PASSWORD_FILE names; password logins over the network only) and the
# database POSTGRES_DB; then PostgreSQL itself. A first start cut short is begun again;
# a volume that holds a cluster already (PG_VERSION) is used as it is.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
db=${POSTGRES_DB:-$POSTGRES_USER}
mkdir -p "$PGDATA" # (a folder inside the volume, as PGDATA=…/data/pgdata on Kubernetes)
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # made aside and moved in once whole: a start cut short leaves no half a cluster
  work=$PGDATA/.initializing
  # no PG_VERSION, no cluster: what is here is what a start cut short left
  find "$PGDATA" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  "$bin/initdb" -D "$work" -U "$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$work/pg_hba.conf"
  "$bin/pg_ctl" -D "$work" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then
    "$bin/psql" -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q \
      -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
  fi
  "$bin/pg_ctl" -D "$work" -m fast -w stop >/dev/null
  chmod 700 "$work"
  find "$work" -mindepth 1 -maxdepth 1 ! -name PG_VERSION -exec mv {} "$PGDATA/" \;
  mv "$work/PG_VERSION" "$PGDATA/" # last: from here on the cluster is whole
  rmdir "$work"
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'

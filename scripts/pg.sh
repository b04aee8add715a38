#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite.
#   source scripts/pg.sh; pg_start   → exports YIBAO_TEST_DATABASE_URL
#   pg_start durable                 → the same with fsync on (every commit flushed: a production node's cost)
#   pg_stop                          → stops it and removes its files
# Installs PostgreSQL 15 from Debian's packages when no server binaries are found.

pg_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

pg_install() {
  if pg_bindir >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed and this user cannot install it: run 'apt-get install -y postgresql-15' as root" >&2
    return 1
  fi
  echo "installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15 >/dev/null || apt-get install -y -qq postgresql >/dev/null
}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  # tests: fsync off (nothing here must survive a power cut); "durable": PostgreSQL's defaults (fsync, synchronous_commit on)
  local fsync="-c fsync=off"
  [ "${1:-}" = durable ] && fsync="-c fsync=on -c synchronous_commit=on"
  pg_install
  local bin
  bin=$(pg_bindir)
  PG_DIR=$(mktemp -d /tmp/yibao-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pg_as_owner "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  pg_as_owner "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/pg.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 $fsync -c max_connections=200" start >/dev/null \
    || { cat "$PG_DIR/pg.log" >&2; return 1; }
  export PG_DIR PG_PORT PG_BIN="$bin"
  export YIBAO_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  unset PG_DIR YIBAO_TEST_DATABASE_URL
}

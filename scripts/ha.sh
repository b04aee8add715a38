#!/usr/bin/env bash
# A throwaway high-availability PostgreSQL: a pg_auto_failover monitor, a primary and a synchronous standby, on loopback
# ports in a temporary directory, fsync on. For demonstrations and the failover test, not for production: every node
# trusts connections from 127.0.0.1 without a password (--auth trust) and the monitor's failure-detection timers are
# shortened (below) so a failover takes seconds, not the half-minute of pg_auto_failover's defaults.
#
#   bash scripts/ha.sh up        starts it and prints the yibao database URL (and HA_DIR, which `down` needs)
#   bash scripts/ha.sh status    pg_autoctl show state
#   bash scripts/ha.sh crash [NODE] SIGKILLs a node (default: the primary) with its pg_autoctl: a machine that died
#   bash scripts/ha.sh down      stops every node and removes the files (HA_DIR from the environment, else the last `up`)
#   source scripts/ha.sh; ha_start; …; ha_stop     the same from a script: exports HA_DIR, HA_PORTS, YIBAO_HA_URL
#
# The URL names both nodes and asks for the one that takes writes, so after a failover new connections find the new
# primary by themselves:
#   postgresql+psycopg://postgres@/yibao?host=127.0.0.1:P1&host=127.0.0.1:P2&target_session_attrs=read-write
# (SQLAlchemy's psycopg dialect turns repeated host= into libpq's host=a,b port=p1,p2.)
# Replication is pg_auto_failover's default for two data nodes: replication-quorum true, number_sync_standbys 0, so the
# primary's synchronous_standby_names names the standby and a commit is acknowledged once it is on both nodes.
# YIBAO_HA_DEFAULT_TIMERS=1 keeps pg_auto_failover's own timers. Installs postgresql-15-auto-failover when missing.

HA_LAST=/tmp/yibao-ha.last

ha_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    # the server's binaries beside the monitor's extension (pg_autoctl itself is /usr/bin/pg_autoctl)
    [ -x "$dir/initdb" ] && [ -f "$dir/../lib/pgautofailover.so" ] && command -v pg_autoctl >/dev/null && { echo "$dir"; return 0; }
  done
  return 1
}

ha_install() {
  if ha_bindir >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "pg_auto_failover is not installed and this user cannot install it: run 'apt-get install -y postgresql-15-auto-failover' as root" >&2
    return 1
  fi
  echo "installing pg_auto_failover from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql-15-auto-failover >/dev/null
}

# pg_autoctl and psql as the owner of the files (initdb refuses root), with its configuration and state kept in HA_DIR
ha_owner_prefix() {
  HA_OWNER=(env "PATH=$HA_BIN:$PATH" "XDG_CONFIG_HOME=$HA_DIR/config" "XDG_DATA_HOME=$HA_DIR/share"
            "XDG_RUNTIME_DIR=$HA_DIR/run" "PG_CONFIG=$HA_BIN/pg_config")
  if [ "$(id -u)" = 0 ]; then HA_OWNER=(runuser -u postgres -- "${HA_OWNER[@]}"); fi
}

ha_as_owner() {
  ha_owner_prefix
  "${HA_OWNER[@]}" "$@"
}

ha_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# one node's pg_autoctl in the background, in a session of its own, logging to HA_DIR/NAME.log; the subshell becomes
# the command (exec), so no descriptor of the caller's (a pipe someone waits on to close) stays open behind it
ha_launch() {
  local name=$1; shift
  ha_owner_prefix
  ( exec "${HA_OWNER[@]}" setsid "$@" >"$HA_DIR/$name.log" 2>&1 </dev/null ) &
}

ha_show_state() {
  ha_as_owner pg_autoctl show state --pgdata "$HA_DIR/monitor" "$@"
}

# waits until the formation shows a primary and a secondary (both reached, not only assigned)
ha_wait_ready() {
  local timeout=${1:-120} i
  for ((i = 0; i < timeout * 2; i++)); do
    if ha_show_state --json 2>/dev/null | python3 -c '
import json, sys
nodes = json.load(sys.stdin)
states = sorted((n["current_group_state"], n["assigned_group_state"]) for n in nodes)
sys.exit(0 if states == [("primary", "primary"), ("secondary", "secondary")] else 1)'; then
      return 0
    fi
    sleep 0.5
  done
  echo "the formation did not reach primary + secondary in ${timeout}s:" >&2
  ha_show_state >&2 || true
  tail -n 20 "$HA_DIR"/*.log >&2
  return 1
}

ha_start() {
  ha_install || return 1
  HA_BIN=$(ha_bindir)
  HA_DIR=$(mktemp -d /tmp/yibao-ha.XXXXXX)
  chmod 755 "$HA_DIR"
  mkdir -p "$HA_DIR/config" "$HA_DIR/share" "$HA_DIR/run"
  chmod 700 "$HA_DIR/run"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$HA_DIR"
  local monitor_port p1 p2
  monitor_port=$(ha_free_port); p1=$(ha_free_port); p2=$(ha_free_port)
  export HA_DIR HA_BIN
  ha_as_owner pg_autoctl create monitor --pgdata "$HA_DIR/monitor" --pgport "$monitor_port" --hostname 127.0.0.1 \
    --auth trust --no-ssl >"$HA_DIR/create-monitor.log" 2>&1 || { cat "$HA_DIR/create-monitor.log" >&2; return 1; }
  ha_launch monitor pg_autoctl run --pgdata "$HA_DIR/monitor"
  local i
  for ((i = 0; i < 60; i++)); do
    ha_as_owner "$HA_BIN/pg_isready" -q -h 127.0.0.1 -p "$monitor_port" && break
    sleep 0.5
  done
  if [ "${YIBAO_HA_DEFAULT_TIMERS:-0}" != 1 ]; then
    # the monitor checks each node every second and calls a node that answers neither its checks nor with its keeper's
    # reports for 3 s unhealthy (defaults: 5 s and 20 s); a primary that cannot be told to step down is given 5 s
    # (default 30 s) before its standby is promoted: the keepers' own network-partition timeout is set below it
    ha_as_owner "$HA_BIN/psql" -q -h 127.0.0.1 -p "$monitor_port" -U postgres -d pg_auto_failover -v ON_ERROR_STOP=1 \
      -c "ALTER SYSTEM SET pgautofailover.health_check_period = '1s'" \
      -c "ALTER SYSTEM SET pgautofailover.health_check_timeout = '1s'" \
      -c "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
      -c "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = '1s'" \
      -c "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = '3s'" \
      -c "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = '5s'" \
      -c "SELECT pg_reload_conf()" >/dev/null || return 1
  fi
  local monitor_uri
  monitor_uri=$(ha_as_owner pg_autoctl show uri --pgdata "$HA_DIR/monitor" --formation monitor) || return 1
  local n port
  for n in 1 2; do
    port=$([ "$n" = 1 ] && echo "$p1" || echo "$p2")
    ha_launch "node$n" pg_autoctl create postgres --pgdata "$HA_DIR/node$n" --pgport "$port" --hostname 127.0.0.1 \
      --listen 127.0.0.1 --name "node$n" --dbname yibao --username postgres --auth trust --no-ssl --monitor "$monitor_uri" --run
    if [ "$n" = 1 ]; then  # the first node initialises the database and becomes the primary before the second copies it
      for ((i = 0; i < 120; i++)); do
        ha_show_state 2>/dev/null | grep -q "node1 .*| *single *| *single" && break
        sleep 0.5
      done
    fi
  done
  # pg_basebackup asks the primary for a spread checkpoint (minutes on a quiet cluster); an immediate one speeds it up
  for ((i = 0; i < 120; i++)); do
    grep -q "checkpoint completed" "$HA_DIR/node2.log" 2>/dev/null && break
    ha_as_owner "$HA_BIN/psql" -q -h 127.0.0.1 -p "$p1" -U postgres -d yibao -c CHECKPOINT >/dev/null 2>&1 || true
    sleep 0.5
  done
  ha_wait_ready 180 || { echo "the formation did not become ready (see $HA_DIR/*.log); stopping it" >&2; ha_stop; return 1; }
  if [ "${YIBAO_HA_DEFAULT_TIMERS:-0}" != 1 ]; then
    for n in 1 2; do
      ha_as_owner pg_autoctl config set --pgdata "$HA_DIR/node$n" timeout.network_partition_timeout 4 >/dev/null || true
    done
  fi
  HA_PORTS="$p1,$p2"
  HA_MONITOR_PORT=$monitor_port
  YIBAO_HA_URL="postgresql+psycopg://postgres@/yibao?host=127.0.0.1:$p1&host=127.0.0.1:$p2&target_session_attrs=read-write&connect_timeout=2"
  export HA_PORTS HA_MONITOR_PORT YIBAO_HA_URL
  printf 'HA_DIR=%q\nHA_BIN=%q\nHA_PORTS=%q\nHA_MONITOR_PORT=%q\nYIBAO_HA_URL=%q\n' \
    "$HA_DIR" "$HA_BIN" "$HA_PORTS" "$HA_MONITOR_PORT" "$YIBAO_HA_URL" >"$HA_DIR/ha.env"
  echo "$HA_DIR" >"$HA_LAST"
}

# stops every node (immediately: throwaway data) and removes the files
ha_stop() {
  [ -n "${HA_DIR:-}" ] && [ -d "$HA_DIR" ] || return 0
  HA_BIN=${HA_BIN:-$(ha_bindir)}
  local node
  for node in node1 node2 node3 monitor; do
    [ -d "$HA_DIR/$node" ] && { ha_as_owner pg_autoctl stop --pgdata "$HA_DIR/$node" --immediate >/dev/null 2>&1 || true; }
  done
  for node in node1 node2 node3 monitor; do  # whatever pg_autoctl left running (a postmaster it had not yet adopted)
    [ -f "$HA_DIR/$node/postmaster.pid" ] && { ha_as_owner "$HA_BIN/pg_ctl" -D "$HA_DIR/$node" -m immediate -w stop >/dev/null 2>&1 || true; }
  done
  sleep 0.5
  rm -rf "$HA_DIR"
  if [ "$(cat "$HA_LAST" 2>/dev/null)" = "$HA_DIR" ]; then rm -f "$HA_LAST"; fi
  unset HA_DIR HA_PORTS HA_MONITOR_PORT YIBAO_HA_URL
  return 0
}

# the node (node1, node2) that takes writes now
ha_primary() {
  ha_show_state --json | python3 -c '
import json, sys
print(next((n["nodename"] for n in json.load(sys.stdin) if n["current_group_state"] in ("primary", "wait_primary", "single")), ""))'
}

# the process group of NODE's pg_autoctl, its postmaster and every backend (they share the session ha_launch gave them)
ha_node_pgid() {
  local node=$1 pid pgid
  pid=$(head -n 1 "$HA_DIR/$node/postmaster.pid" 2>/dev/null) || { echo "$node is not running" >&2; return 1; }
  pgid=$(ps -o pgid= -p "$pid" | tr -d ' ')
  [ -n "$pgid" ] && [ "$pgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] || { echo "no process group of its own for $node" >&2; return 1; }
  echo "$pgid"
}

# a crash of NODE's machine: SIGKILL to its pg_autoctl, its postmaster and every backend at once
ha_crash() {
  local pgid
  pgid=$(ha_node_pgid "$1") || return 1
  kill -KILL -- "-$pgid"
}

ha_load() {  # the environment of the last `up` unless HA_DIR is set
  HA_DIR=${HA_DIR:-$(cat "$HA_LAST" 2>/dev/null)}
  [ -n "$HA_DIR" ] && [ -f "$HA_DIR/ha.env" ] || { echo "no HA cluster is up (HA_DIR unset and no $HA_LAST)" >&2; return 1; }
  # shellcheck disable=SC1091
  source "$HA_DIR/ha.env"
  export HA_DIR HA_BIN HA_PORTS HA_MONITOR_PORT YIBAO_HA_URL
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    up)
      ha_start
      ha_show_state
      echo
      echo "HA_DIR=$HA_DIR"
      echo "YIBAO_HA_URL=$YIBAO_HA_URL"
      echo "serve yibao on it:  YIBAO_DATABASE_URL='$YIBAO_HA_URL' yibao serve --demo"
      ;;
    status) ha_load && ha_show_state ;;
    crash) ha_load && ha_crash "${2:-$(ha_primary)}" ;;
    down) ha_load && ha_stop ;;
    *) echo "usage: bash scripts/ha.sh up|status|crash [NODE]|down" >&2; exit 2 ;;
  esac
fi

#!/usr/bin/env bash
# The whole gate: installs what it needs, runs the static checks (scripts/lint.sh), then every test on SQLite, then
# again on a throwaway PostgreSQL cluster, and stops the cluster. Extra arguments go to pytest.
#
# Tests run in a random order (pytest-randomly) and on every core (pytest-xdist), so a test that leans on another's
# leftovers or on running alone fails here. The seed is printed: YIBAO_TEST_SEED=<seed> make test repeats the order;
# YIBAO_TEST_WORKERS=0 runs in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/browser.sh
source scripts/pg.sh
trap pg_stop EXIT
pg_install || echo "PostgreSQL is missing: the federation's test and the PostgreSQL pass will fail or be skipped" >&2
# the federation's end-to-end test (tests/test_federation.py) starts its own cluster and nats-server (JetStream)
if ! command -v nats-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing nats-server from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; } \
      || echo "nats-server could not be installed: the federation test will be skipped" >&2
  else
    echo "nats-server is not installed (apt-get install -y nats-server): the federation test will be skipped" >&2
  fi
fi
source scripts/ha.sh
ha_install || echo "the failover test will be skipped" >&2  # pg_auto_failover, for tests/test_failover.py (its own formation)

echo "== lint"
bash scripts/lint.sh

# A new order every run here; CI (CI=true) takes one fixed order, so a red CI run is the same run again on any machine.
if [ -n "${CI:-}" ]; then default_seed=20261123; else default_seed=$((RANDOM * 32768 + RANDOM)); fi
seed=${YIBAO_TEST_SEED:-$default_seed}
workers=${YIBAO_TEST_WORKERS:-auto}
echo "== test order seed $seed (YIBAO_TEST_SEED=$seed make test repeats it), workers: $workers"
pytest=(.venv/bin/python -m pytest -q -p randomly "--randomly-seed=$seed" -n "$workers")

echo "== tests on SQLite"
"${pytest[@]}" "$@"

echo "== tests on PostgreSQL"
pg_start
"${pytest[@]}" "$@"

#!/usr/bin/env bash
# The whole test suite: installs what it needs, runs every test on SQLite, then again on a
# throwaway PostgreSQL cluster, and stops the cluster. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/browser.sh
source scripts/pg.sh
trap pg_stop EXIT

echo "== tests on SQLite"
.venv/bin/python -m pytest -q "$@"

echo "== tests on PostgreSQL"
pg_start
.venv/bin/python -m pytest -q "$@"

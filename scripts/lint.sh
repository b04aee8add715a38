#!/usr/bin/env bash
# The static gates, run by scripts/test.sh before any test: ruff (pyflakes, pycodestyle, import order, bugbear,
# pyupgrade), mypy on src/yibao, and the import contracts in .importlinter (which package may import which).
# Each prints what it found; the script fails if any of them does.
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
echo "== ruff"
.venv/bin/ruff check src tests bench || failed=1
echo "== mypy"
.venv/bin/mypy || failed=1
if [ -f .importlinter ]; then
  echo "== import contracts"
  .venv/bin/lint-imports || failed=1
fi
exit $failed

#!/usr/bin/env bash
# Run the whole suite on SQLite, then again on PostgreSQL when one is reachable; print which ran.
# Extra arguments go to pytest (e.g. ./test.sh -k live -x).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-venv.sh

PG_URL="${TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
ran=()

echo "=== test suite on SQLite ==="
TEST_DATABASE_URL="" venv/bin/python -m pytest -q "$@"
ran+=("SQLite")

if venv/bin/python - "$PG_URL" <<'PY'
import sys
import psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
try:
    psycopg.connect(url, connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable ({exc}); skipping the PostgreSQL run")
    sys.exit(1)
PY
then
  echo "=== test suite on PostgreSQL ($PG_URL) ==="
  TEST_DATABASE_URL="$PG_URL" venv/bin/python -m pytest -q "$@"
  ran+=("PostgreSQL")
fi
echo "=== suites run: ${ran[*]} ==="

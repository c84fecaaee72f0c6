#!/usr/bin/env bash
# Lint, type-check and run the tests against SQLite and a real PostgreSQL on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
db="nightshift_test_$$"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
export NIGHTSHIFT_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$db"

uv run ruff check .
uv run ruff format --check .
uv run mypy
# The layers (pyproject.toml, [tool.importlinter]): the core imports no Prefect, FastAPI or GX;
# stages depend on each other only in the pipeline's direction.
uv run lint-imports
# Tests run in parallel (pytest-xdist; many wait on servers and sleeps more than they compute) and in
# a random order (pytest-randomly; the seed is printed, `--randomly-seed=N` replays an order).
# Workers take one test at a time, the slow ones first (tests/conftest.py), so no long test starts last.
uv run pytest -n "${NIGHTSHIFT_TEST_WORKERS:-3}" --dist load --maxschedchunk 1 "$@"

#!/usr/bin/env bash
# The whole pipeline on the embedded default: SQLite, Prefect's temporary local API, bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec uv run nightshift demo "$@"

#!/usr/bin/env bash
# Installs what Nightshift needs on a fresh machine: uv, then the locked Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
uv sync --frozen --quiet

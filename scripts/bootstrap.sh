#!/usr/bin/env bash
# Installs what Nightshift needs on a fresh machine: uv, then the locked Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
# Compiled once here: with PYTHONDONTWRITEBYTECODE set (as on this workplace's machines), Python
# would otherwise compile every imported module from source on every start of every command.
uv sync --frozen --quiet --compile-bytecode
uv run --frozen python -m compileall -q -j 0 nightshift app flows tasks expectations deployments bench >/dev/null
# The browser tests drive Debian's Chromium: Playwright cannot download its own browser here.
if ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi

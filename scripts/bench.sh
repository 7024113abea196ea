#!/usr/bin/env bash
# Run every benchmark and print their tables: swarm makespan (virtual time), runtime overhead
# beside asyncio and autogen-core, control latency, fault injection, cross-team delivery and
# the rebalancer's corpus, malformed model answers, the web app on a 20,000-event session. About 6 minutes on 2 cores. Installs the optional bench extra
# (matplotlib for the plot, autogen-core for the peer column).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
uv sync --frozen --quiet --extra bench --extra local --inexact
run() { echo; echo "## $*"; uv run python -m loomkin.bench "$@"; }
run swarm --all --plot benchmarks/swarm.png
run overhead
run control
run faults
run comms
run rebalancer
run fuzz --answers 2000
run cost
if [ -x /usr/bin/chromium ]; then run web --events 20000; else echo 'web: skipped (no /usr/bin/chromium)'; fi

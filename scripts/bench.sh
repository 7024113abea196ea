#!/usr/bin/env bash
# Run both benchmarks: swarm makespan (virtual time) and runtime overhead (real time).
# Needs the optional extra for the plot and the autogen-core column: uv sync --extra bench --inexact
set -euo pipefail
cd "$(dirname "$0")/.."
uv run python -m loomkin.bench swarm --all --plot benchmarks/swarm.png
echo
uv run python -m loomkin.bench overhead

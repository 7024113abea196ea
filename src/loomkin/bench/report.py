"""Markdown tables and the plot of the benchmark results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.bench.graph import STRATEGIES
from loomkin.bench.startup import STARTUP_FIGURES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from loomkin.bench.overhead_run import OverheadResult
    from loomkin.bench.swarm import SwarmResult

__all__ = ["overhead_table", "plot_swarm", "swarm_table"]


def swarm_table(results: Sequence[SwarmResult]) -> str:
    """One row per (workload, agents): makespan and makespan ÷ lower bound per strategy."""
    head = ["workload", "agents", "lower bound s", "critical path s"]
    for strategy in STRATEGIES:
        head += [f"{strategy} s", f"{strategy} ÷ LB"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    rows: dict[tuple[str, int], dict[str, SwarmResult]] = {}
    for r in results:
        rows.setdefault((r.workload, r.agents), {})[r.strategy] = r
    for (workload, agents), by in rows.items():
        first = next(iter(by.values()))
        cells = [
            workload,
            str(agents),
            f"{first.lower_bound_s:,.0f}",
            f"{first.critical_path_s:,.0f}",
        ]
        for strategy in STRATEGIES:
            run = by.get(strategy)
            cells += [f"{run.makespan_s:,.0f}", f"{run.ratio:.3f}"] if run else ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    wall = sum(r.wall_s for r in results)
    events = sum(r.events for r in results)
    lines.append("")
    lines.append(f"{len(results)} runs, {events:,} events, {wall:.1f} s wall in total.")
    return "\n".join(lines)


def plot_swarm(results: Sequence[SwarmResult], path: Path) -> str:
    """Save a bar chart of makespan ÷ lower bound per strategy; return what was done."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (uv sync --extra bench): no plot"
    groups = sorted({(r.workload, r.agents) for r in results})
    width = 0.8 / len(STRATEGIES)
    fig, ax = plt.subplots(figsize=(max(6.0, len(groups) * 0.9), 4.0))
    for s, strategy in enumerate(STRATEGIES):
        by = {(r.workload, r.agents): r.ratio for r in results if r.strategy == strategy}
        xs = [g + s * width for g in range(len(groups))]
        ax.bar(xs, [by.get(g, 0.0) for g in groups], width, label=strategy)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([g + width for g in range(len(groups))])
    ax.set_xticklabels([f"{w}\n{a} agents" for w, a in groups], fontsize=7)
    ax.set_ylabel("makespan ÷ lower bound")
    ax.set_title("Loomkin swarm makespan by strategy (virtual time)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("oneway_msgs_per_s", "one-way messages", "msg/s"),
    ("rpc_per_s", "request/reply", "rtt/s"),
    ("rpc_p50_us", "request/reply p50", "µs"),
    ("rpc_p99_us", "request/reply p99", "µs"),
    ("memlog_oneway_msgs_per_s", "one-way, logged (memory store)", "msg/s"),
    ("sqlite_oneway_msgs_per_s", "one-way, logged (SQLite store)", "msg/s"),
    ("spawn_s_1k", "spawn 1k idle agents", "s"),
    ("spawn_s_10k", "spawn 10k idle agents", "s"),
    ("bytes_per_idle_agent_1k", "memory per idle agent, 1k", "bytes"),
    ("bytes_per_idle_agent_10k", "memory per idle agent, 10k", "bytes"),
)


def _fmt(value: object) -> str:
    if isinstance(value, float | int):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return "–"


def _ratio(value: object, base: object) -> str:
    if isinstance(value, float | int) and isinstance(base, float | int) and base:
        return f"{value / base:.2f}×"
    return "–"


def overhead_table(result: OverheadResult) -> str:
    """Loomkin next to asyncio and autogen-core, with Loomkin ÷ each as ratios."""
    head = "| figure | unit | loomkin | asyncio | autogen-core | ÷ asyncio | ÷ autogen |"
    lines = [head, "|" + " --- |" * 7]
    rows: list[tuple[str, str, object, object, object]] = [
        (label, unit, result.get(k), result.get(f"asyncio_{k}"), result.get(f"autogen_{k}"))
        for k, label, unit in _ROWS
    ]
    fan = result.get("fanout_overhead_ms")
    if isinstance(fan, dict):
        for k in fan:
            others = [result.get(f"{p}fanout_overhead_ms") for p in ("asyncio_", "autogen_")]
            bases = [p.get(k) if isinstance(p, dict) else None for p in others]
            rows.append((f"fan-out K={k}, over 50 ms", "ms", fan.get(k), bases[0], bases[1]))
    for label, unit, ours, base, peer in rows:
        cells = [label, unit, _fmt(ours), _fmt(base), _fmt(peer), _ratio(ours, base)]
        cells.append(_ratio(ours, peer))
        lines.append("| " + " | ".join(cells) + " |")
    lines += _startup_table(result.get("startup_cpu_s"))
    notes = result.get("notes")
    if isinstance(notes, list):
        lines += ["", *(f"Note: {n}" for n in notes)]
    return "\n".join(lines)


def _startup_table(startup: object) -> list[str]:
    """The start-up row: CPU seconds beside a bare interpreter."""
    if not isinstance(startup, dict):
        return []
    values = [startup.get(name) for name in STARTUP_FIGURES]
    cells = [f"{v:.3f}" if isinstance(v, float | int) else "–" for v in values]
    return [
        "",
        "| start-up | bare python | import loomkin.cli.main | loomkin --help |",
        "|" + " --- |" * 4,
        "| " + " | ".join(["CPU s (median)", *cells]) + " |",
    ]

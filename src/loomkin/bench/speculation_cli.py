"""``python -m loomkin.bench speculation``: the speculation sweep, its table and its plot.

Every workload (the bundled ones, or ``--workload``) × ``--agents`` × ``--hit-rate``, each a
speculative run beside its non-speculative baseline (:mod:`loomkin.bench.speculation`)::

    python -m loomkin.bench speculation [--workload W ...] [--agents 4 16]
        [--hit-rate 0.2 0.5 0.8] [--seed K] [--plot PATH] [--json]

The single-run form is ``python -m loomkin.bench swarm --strategy speculative --hit-rate P``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.bench.workloads import load_workload, workload_paths
from loomkin.errors import UserError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from loomkin.bench.speculation import SpeculationResult

__all__ = ["add_parser", "mean_table", "plot_speculation", "run_command", "speculation_table"]

DEFAULT_PLOT = Path("benchmarks") / "speculation.png"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``speculation`` sub-command."""
    p = sub.add_parser("speculation", help="speculative vs non-speculative makespan and waste")
    p.add_argument("--workload", nargs="*", help="workload files or names (default: all)")
    p.add_argument("--agents", type=int, nargs="+", default=[4, 16])
    p.add_argument("--hit-rate", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    p.add_argument("--seed", type=int, nargs="+", default=[0], help="one run per seed")
    p.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="PNG path")
    p.add_argument("--json", action="store_true", help="print one JSON array")


def run_command(args: argparse.Namespace) -> None:
    """Run the sweep and print its table (or JSON), and write the plot."""
    from loomkin.bench.speculation import run_speculation

    for p in args.hit_rate:
        if not 0.0 <= p <= 1.0:
            raise UserError(f"--hit-rate must be between 0 and 1, got {p}")
    if any(n < 1 for n in args.agents):
        raise UserError("--agents must be at least 1")
    names = args.workload or [str(path) for path in workload_paths()]
    results = [
        run_speculation(load_workload(name), agents=n, hit_rate=p, seed=seed)
        for name in names
        for n in args.agents
        for p in args.hit_rate
        for seed in args.seed
    ]
    if args.json:
        print(json.dumps([r.to_json() for r in results]))
        return
    print(speculation_table(results))
    if len(args.seed) > 1:
        print()
        print(mean_table(results))
    print(plot_speculation(results, args.plot))


def speculation_table(results: Sequence[SpeculationResult]) -> str:
    """A markdown table of the sweep."""
    lines = [
        "| workload | agents | P | makespan ÷ baseline | waste | speculations | held | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.workload} | {r.agents} | {r.hit_rate:.1f} | {r.ratio_to_baseline:.3f} | "
        f"{r.waste_fraction:.3f} | {r.speculations} | {r.speculations_held} | "
        f"{r.speculations_failed} |"
        for r in results
    ]
    return "\n".join(lines)


def _means(results: Sequence[SpeculationResult]) -> list[tuple[str, int, float, float, float]]:
    keys = sorted({(r.workload, r.agents, r.hit_rate) for r in results})
    rows = []
    for w, n, p in keys:
        runs = [r for r in results if (r.workload, r.agents, r.hit_rate) == (w, n, p)]
        ratio = sum(r.ratio_to_baseline for r in runs) / len(runs)
        waste = sum(r.waste_fraction for r in runs) / len(runs)
        rows.append((w, n, p, ratio, waste))
    return rows


def mean_table(results: Sequence[SpeculationResult]) -> str:
    """A markdown table of the means over seeds."""
    seeds = len({r.seed for r in results})
    lines = [
        f"| workload | agents | P | mean makespan ÷ baseline ({seeds} seeds) | mean waste |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {w} | {n} | {p:.1f} | {ratio:.3f} | {waste:.3f} |"
        for w, n, p, ratio, waste in _means(results)
    ]
    return "\n".join(lines)


def plot_speculation(results: Sequence[SpeculationResult], path: Path) -> str:
    """Makespan ÷ baseline and waste against P, one line per workload and agent count."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (uv sync --extra bench): no plot"
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    means = _means(results)  # averaged over the seeds, when there are several
    for key in sorted({(w, n) for w, n, _p, _r, _w in means}):
        runs = [m for m in means if (m[0], m[1]) == key]
        xs = [m[2] for m in runs]
        label = f"{key[0]}, {key[1]} agents"
        left.plot(xs, [m[3] for m in runs], marker="o", label=label)
        right.plot(xs, [m[4] for m in runs], marker="o", label=label)
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_xlabel("hit rate P")
    left.set_ylabel("makespan ÷ non-speculative makespan")
    right.set_xlabel("hit rate P")
    right.set_ylabel("waste fraction")
    left.legend(fontsize=7)
    fig.suptitle("Loomkin speculation (real orchestrator, virtual time)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"

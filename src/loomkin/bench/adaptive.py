"""``python -m loomkin.bench adaptive``: the autoscaler and work stealing, side by side.

* **Adaptive vs fixed.** For every workload in the workloads folder and the synthetic shapes,
  the same graph runs with a fixed team of ``--max-agents`` (self-organizing) and with the
  ``adaptive`` strategy (one worker; the autoscaler grows the team up to that many, each new
  agent spending ``--spawn-cost-s`` onboarding). The figures are the ratios the issue sets
  goals on: makespan ÷ fixed makespan (≤ 1.10) and agent-seconds ÷ (N × fixed makespan)
  (≤ 0.5).
* **Skewed load.** Ten equal tasks are given to one agent of four while three sit idle;
  the scheduler's stealing spreads them. The same tasks left on the board for the scheduler
  to hand out are the balanced schedule; the ratio of the two makespans is the goal (≤ 1.1).
  Without stealing the ten tasks would run one after another (ten times one task's work).
"""

from __future__ import annotations

import tempfile
import time
from typing import TYPE_CHECKING

import looptime

from loomkin.agents import SessionSettings
from loomkin.bench.lives import Lives
from loomkin.bench.swarm import WorkModel, run_swarm
from loomkin.bench.workloads import SHAPES, TaskSpec, load_workload, synthetic, workload_paths
from loomkin.core.events import AgentSpawned, TaskStatusChanged
from loomkin.ids import TaskId
from loomkin.service import Loomkin

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.bench.workloads import Workload
    from loomkin.llm.model import Model

__all__ = ["adaptive_table", "plot_adaptive", "run_adaptive", "run_skew"]

Row = dict[str, str | int | float]


def _compare(workload: Workload, agents: int, spawn_cost_s: float) -> Row:
    fixed = run_swarm(workload, agents=agents, strategy="self-organizing")
    adaptive = run_swarm(workload, agents=agents, strategy="adaptive", spawn_cost_s=spawn_cost_s)
    budget = agents * fixed.makespan_s
    return {
        "workload": workload.name,
        "fixed_makespan_s": fixed.makespan_s,
        "adaptive_makespan_s": adaptive.makespan_s,
        "makespan_ratio": round(adaptive.makespan_s / fixed.makespan_s, 4),
        "fixed_agent_seconds": fixed.agent_seconds,
        "adaptive_agent_seconds": adaptive.agent_seconds,
        "agent_seconds_ratio": round(adaptive.agent_seconds / budget, 4),
        "peak_agents": adaptive.peak_agents,
        "spawns": adaptive.spawns,
        "retires": adaptive.retires,
        "steals": adaptive.steals,
        "tasks_completed": adaptive.tasks_completed,
        "tasks_total": adaptive.tasks_total,
        "parallelism": round(fixed.total_work_s / fixed.critical_path_s, 2),
    }


async def _skew_run(tasks: int, agents: int, work_s: float, *, skewed: bool) -> tuple[float, int]:
    specs: dict[TaskId, TaskSpec] = {}

    def factory(_role: Role, _name: str) -> Model:
        return WorkModel(specs)

    settings = SessionSettings(
        bootstrap_orienter=False, stream_idle_timeout_s=10 * work_s, max_agents_per_team=agents
    )
    with tempfile.TemporaryDirectory() as project:
        async with await Loomkin.open("memory:") as lk:
            session = await lk.open_session(project, model_factory=factory, settings=settings)
            for i in range(agents):
                await session.spawn_agent(f"agent{i:03d}", "coder")
            for k in range(tasks):
                title = f"task{k:02d}"
                task_id = await session.create_task(
                    title, work_s=work_s, assign_to="agent000" if skewed else None
                )
                specs[TaskId(task_id)] = TaskSpec(id=title, role="coder", work_s=work_s)
            await session.wait_idle()
            history = await session.history()
    start = min(r.recorded_at for r in history if isinstance(r.event, AgentSpawned))
    ends = [
        r.recorded_at
        for r in history
        if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
    ]
    if len(ends) != tasks:
        raise RuntimeError(f"skew run finished {len(ends)} of {tasks} tasks")
    lives = Lives.of(history, end=max(ends))
    return max(ends) - start, lives.steals


def run_skew(tasks: int = 10, agents: int = 4, work_s: float = 300.0) -> Row:
    """The skewed-load scenario (virtual time): balanced vs queued on one agent, stolen."""
    loop = looptime.new_event_loop()
    try:
        balanced, _ = loop.run_until_complete(_skew_run(tasks, agents, work_s, skewed=False))
        stolen, steals = loop.run_until_complete(_skew_run(tasks, agents, work_s, skewed=True))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return {
        "tasks": tasks,
        "agents": agents,
        "work_s": work_s,
        "balanced_makespan_s": round(balanced, 3),
        "stealing_makespan_s": round(stolen, 3),
        "ratio": round(stolen / balanced, 4),
        "steals": steals,
        "without_stealing_s": tasks * work_s,
    }


def run_adaptive(agents: int = 16, spawn_cost_s: float = 60.0, size: int = 40) -> dict[str, object]:
    """Every workload and synthetic shape, adaptive vs fixed; then the skew scenario."""
    started = time.perf_counter()
    workloads = [load_workload(p) for p in workload_paths()]
    workloads += [synthetic(shape, size=size, seed=0) for shape in SHAPES]
    rows = [_compare(w, agents, spawn_cost_s) for w in workloads]
    return {
        "agents": agents,
        "spawn_cost_s": spawn_cost_s,
        "workloads": rows,
        "skew": run_skew(),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def adaptive_table(report: dict[str, object]) -> str:
    """The report as Markdown tables."""
    head = (
        "| workload | parallelism | fixed makespan s | adaptive makespan s | makespan ÷ fixed "
        "| agent-s ÷ (N × fixed makespan) | peak | spawns | retires | steals |"
    )
    lines = [head, "|" + " --- |" * 10]
    rows = report["workloads"]
    assert isinstance(rows, list)
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['parallelism']} | {r['fixed_makespan_s']:,.0f} "
            f"| {r['adaptive_makespan_s']:,.0f} | {r['makespan_ratio']:.3f} "
            f"| {r['agent_seconds_ratio']:.3f} | {r['peak_agents']} | {r['spawns']} "
            f"| {r['retires']} | {r['steals']} |"
        )
    skew = report["skew"]
    assert isinstance(skew, dict)
    lines += [
        "",
        f"Skewed load ({skew['tasks']} tasks of {skew['work_s']:g} s queued on one agent of "
        f"{skew['agents']}): balanced {skew['balanced_makespan_s']:,.0f} s, with stealing "
        f"{skew['stealing_makespan_s']:,.0f} s (ratio {skew['ratio']:.3f}, {skew['steals']} "
        f"steals); without stealing {skew['without_stealing_s']:,.0f} s.",
        "",
        f"N = {report['agents']}, spawn cost {report['spawn_cost_s']:g} s; "
        f"{report['wall_s']} s wall.",
    ]
    return "\n".join(lines)


def plot_adaptive(report: dict[str, object], path: Path) -> str:
    """Bars per workload: makespan ÷ fixed and agent-seconds ÷ (N × fixed makespan)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (uv sync --extra bench): no plot"
    rows = report["workloads"]
    assert isinstance(rows, list)
    names = [str(r["workload"]) for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, len(rows) * 0.9), 4.0))
    ax.bar(
        [x - 0.2 for x in xs], [r["makespan_ratio"] for r in rows], 0.4, label="makespan ÷ fixed"
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [r["agent_seconds_ratio"] for r in rows],
        0.4,
        label="agent-seconds ÷ (N × fixed makespan)",
    )
    ax.axhline(1.10, color="tab:blue", linewidth=0.8, linestyle="--")
    ax.axhline(0.5, color="tab:orange", linewidth=0.8, linestyle="--")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, fontsize=7)
    ax.set_title(f"Adaptive team vs a fixed {report['agents']} (virtual time; goals dashed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"

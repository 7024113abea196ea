"""Graph arithmetic for the swarm benchmark: bounds, waves and the strategies' edge sets.

How this works and why:

* **When an edge is met**, measured from the predecessor's start: at the milestone's fraction
  of its work for a milestone edge, at its first output chunk for a ``requires_output`` edge
  without a milestone (the task board's rule: output, partial or whole, meets it), and at its
  completion for ``blocks``. ``informs`` never waits.
* **Critical path**: the earliest finish of the last task with unlimited agents, edges costing
  as above. **Lower bound** for N agents: ``max(critical path, total work ÷ N)``.
* **Strategies** differ only in the dependency edges given to the same real scheduler:
  ``phased`` makes every task of wave k+1 block on every task of wave k (waves are the
  topological levels of the workload's waiting edges), ``dependencies`` turns every waiting
  edge into ``blocks`` on completion, and ``self-organizing`` keeps the workload's edges.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal, get_args

from loomkin.bench.workloads import DepSpec, WorkloadError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.bench.workloads import TaskSpec, Workload

__all__ = [
    "STRATEGIES",
    "Strategy",
    "critical_path",
    "edge_delay",
    "lower_bound",
    "priority_order",
    "strategy_deps",
    "topological_order",
    "waves",
]

Strategy = Literal["phased", "dependencies", "self-organizing"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)


def edge_delay(dep: DepSpec, pred: TaskSpec) -> float | None:
    """Seconds after ``pred`` starts at which ``dep`` is met (``None``: it never waits)."""
    if dep.kind == "informs":
        return None
    if dep.milestone is not None:
        return pred.milestones[dep.milestone] * pred.work_s
    if dep.kind == "requires_output":
        return pred.output_fraction() * pred.work_s
    return pred.work_s


def _waiting(deps: Sequence[DepSpec]) -> list[DepSpec]:
    return [d for d in deps if d.kind != "informs"]


def topological_order(workload: Workload, deps: Sequence[DepSpec] | None = None) -> list[str]:
    """Task ids with every predecessor before its dependents (file order among equals)."""
    edges = _waiting(workload.deps if deps is None else deps)
    preds: dict[str, set[str]] = {t.id: set() for t in workload.tasks}
    succs: dict[str, list[str]] = {t.id: [] for t in workload.tasks}
    for dep in edges:
        if dep.on not in preds[dep.task]:
            preds[dep.task].add(dep.on)
            succs[dep.on].append(dep.task)
    order = [t.id for t in workload.tasks if not preds[t.id]]
    for task_id in order:  # grows while we walk it (Kahn's algorithm)
        for nxt in succs[task_id]:
            preds[nxt].discard(task_id)
            if not preds[nxt]:
                order.append(nxt)
    if len(order) != len(workload.tasks):
        raise WorkloadError(f"workload {workload.name!r} has a dependency cycle")
    return order


def critical_path(workload: Workload, deps: Sequence[DepSpec] | None = None) -> float:
    """Earliest finish of the whole graph with unlimited agents (milestone edges honoured)."""
    edges = _waiting(workload.deps if deps is None else deps)
    incoming: dict[str, list[DepSpec]] = {t.id: [] for t in workload.tasks}
    for dep in edges:
        incoming[dep.task].append(dep)
    specs = {t.id: t for t in workload.tasks}
    start: dict[str, float] = {}
    for task_id in topological_order(workload, edges):
        start[task_id] = max(
            (start[d.on] + (edge_delay(d, specs[d.on]) or 0.0) for d in incoming[task_id]),
            default=0.0,
        )
    return max(start[t.id] + t.work_s for t in workload.tasks)


def lower_bound(workload: Workload, agents: int) -> float:
    """``max(critical path, total work ÷ agents)``: no schedule can finish sooner."""
    if agents < 1:
        raise WorkloadError(f"agents must be at least 1, got {agents}")
    return max(critical_path(workload), workload.total_work() / agents)


def waves(workload: Workload) -> list[list[str]]:
    """Topological levels of the waiting edges: wave k holds tasks whose longest chain is k."""
    level: dict[str, int] = {}
    incoming: dict[str, list[str]] = {t.id: [] for t in workload.tasks}
    for dep in _waiting(workload.deps):
        incoming[dep.task].append(dep.on)
    for task_id in topological_order(workload):
        level[task_id] = max((level[p] + 1 for p in incoming[task_id]), default=0)
    out: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for task in workload.tasks:
        out[level[task.id]].append(task.id)
    return out


def strategy_deps(workload: Workload, strategy: Strategy) -> list[DepSpec]:
    """The dependency edges the strategy gives the scheduler for ``workload``."""
    match strategy:
        case "self-organizing":
            return list(workload.deps)
        case "dependencies":
            seen: dict[tuple[str, str], DepSpec] = {}
            for dep in _waiting(workload.deps):
                seen.setdefault((dep.task, dep.on), DepSpec(task=dep.task, on=dep.on))
            return list(seen.values())
        case "phased":
            levels = waves(workload)
            return [
                DepSpec(task=task, on=on)
                for before, after in itertools.pairwise(levels)
                for task in after
                for on in before
            ]
        case _:
            raise WorkloadError(
                f"unknown strategy {strategy!r}; strategies: {', '.join(STRATEGIES)}"
            )


def priority_order(workload: Workload, deps: Sequence[DepSpec]) -> list[TaskSpec]:
    """Tasks by decreasing bottom level (longest remaining path), the planner's list order.

    The scheduler breaks priority ties by creation order, so creating tasks in this order is
    classic critical-path list scheduling, given to every strategy alike.
    """
    edges = _waiting(deps)
    outgoing: dict[str, list[DepSpec]] = {t.id: [] for t in workload.tasks}
    for dep in edges:
        outgoing[dep.on].append(dep)
    specs = {t.id: t for t in workload.tasks}
    bottom: dict[str, float] = {}
    for task_id in reversed(topological_order(workload, edges)):
        spec = specs[task_id]
        tails = ((edge_delay(d, spec) or 0.0) + bottom[d.task] for d in outgoing[task_id])
        bottom[task_id] = max([spec.work_s, *tails])
    index = {t.id: i for i, t in enumerate(workload.tasks)}
    return sorted(workload.tasks, key=lambda t: (-bottom[t.id], index[t.id]))

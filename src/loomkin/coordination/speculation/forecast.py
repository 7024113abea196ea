"""A forecast of the session's finish, to price what a speculation saves (SPEC §3.7).

How this works and why:

* **What a speculation is worth is the critical-path time it saves**, not its blocker's
  remaining work: starting a task early helps only when the task lies on (or near) the
  longest chain of work still to do. A task with slack would have finished in time anyway.
* **The forecast** is an earliest-finish pass over the session's task graph from *now*, with
  the estimates the board already has: each task's ``work_s`` (600 s when unknown), when the
  running ones started (folded from the log by :class:`Timeline`), and when each edge is
  met — a milestone edge at the milestone's fraction of the predecessor's work (learnt per
  milestone name from the milestones seen so far, ½ until one is seen), a ``requires_output``
  edge at its first output (also ½ until seen), a completion edge at the predecessor's end.
  Unlimited agents are assumed, bounded below by the remaining work ÷ the working agents
  (with few agents the session is short of hands, not of ready work).
* **The saving** of starting a waiting task now is the forecast makespan minus the one with
  that task started now: zero off the critical path, up to the task's whole wait on it.
  Work a speculation does before its check (the edge it waits on being met) is what a
  failed guess throws away.
* **Speculative work** is forecast as if it holds; its output (milestones, completion) is
  released only once its own check passes, so an edge on it is met no sooner than that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events import (
    MilestoneEmitted,
    PartialResultPublished,
    SpeculativeMilestoneHeld,
    TaskStatusChanged,
)
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from loomkin.core.events import Event
    from loomkin.core.taskgraph import Dependency
    from loomkin.core.tasks import TaskBoard
    from loomkin.core.taskview import TaskView

__all__ = ["DEFAULT_WORK_S", "Forecast", "Timeline", "forecast"]

DEFAULT_WORK_S = 600.0
"""Work assumed for a task with no estimate (most tasks an agent creates have none)."""
_PRIOR_FRACTION = 0.5
"""Where a milestone (or a first output) falls in its task's work before one was seen."""
_OUTPUT = "\x00output"
"""The key under which first-output fractions are learnt (no milestone can be named so)."""
_STARTED = frozenset({"in_progress", "pending_speculative", "partially_complete"})
_SPECULATIVE = frozenset({"pending_speculative", "completed_tentative"})


@dataclass(slots=True)
class Timeline:
    """When tasks started and where their milestones fell, folded from the log."""

    started: dict[TaskId, float] = field(default_factory=dict)
    """When the current attempt of each running task started."""
    fractions: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Milestone name → (sum of observed fractions of the work, how many)."""
    _output_seen: set[TaskId] = field(default_factory=set)
    """Running tasks whose first output was counted (only the first chunk says where)."""

    def apply(self, event: Event, at: float, work_of: Callable[[TaskId], float]) -> None:
        """Fold one event in (``work_of`` gives a task's estimated work, 0 when unknown)."""
        match event:
            case TaskStatusChanged(status=status, task_id=tid) if status in _STARTED:
                self.started.setdefault(tid, at)
            case TaskStatusChanged(status="pending" | "completed" | "failed" | "cancelled"):
                self.started.pop(event.task_id, None)
                self._output_seen.discard(event.task_id)
            case SpeculativeMilestoneHeld(task_id=tid, name=name):
                self._seen(tid, name, at, work_of)
            case MilestoneEmitted(task_id=tid, name=name):
                self._seen(tid, name, at, work_of)
            case PartialResultPublished(task_id=tid):
                self._seen(tid, _OUTPUT, at, work_of)
            case _:
                pass

    def _seen(self, tid: TaskId, name: str, at: float, work_of: Callable[[TaskId], float]) -> None:
        start = self.started.get(tid)
        work = work_of(tid)
        if start is None or work <= 0 or at < start:
            return
        if name == _OUTPUT:
            if tid in self._output_seen:
                return
            self._output_seen.add(tid)
        total, n = self.fractions.get(name, (0.0, 0))
        self.fractions[name] = (total + min(1.0, (at - start) / work), n + 1)

    def fraction(self, milestone: str | None) -> float:
        """Where ``milestone`` (``None``: the first output) falls in its task's work."""
        total, n = self.fractions.get(_OUTPUT if milestone is None else milestone, (0.0, 0))
        return total / n if n else _PRIOR_FRACTION


@dataclass(frozen=True, slots=True)
class Forecast:
    """Projected times of a session's tasks, from ``now``."""

    now: float
    start: dict[TaskId, float]
    finish: dict[TaskId, float]
    ready_at: dict[TaskId, float]
    """When each task's unmet blocking edges would all be met (``now`` if none)."""
    makespan: float
    """The projected end of the session's work (absolute time)."""


def forecast(
    board: TaskBoard,
    tasks: Iterable[TaskView],
    timeline: Timeline,
    now: float,
    *,
    workers: int,
    start_now: TaskId | None = None,
) -> Forecast:
    """Earliest-finish pass over ``tasks`` (one session's), optionally starting one now."""
    views = {v.task_id: v for v in tasks if v.status != "cancelled"}
    start: dict[TaskId, float] = {}
    finish: dict[TaskId, float] = {}
    ready_at: dict[TaskId, float] = {}
    remaining = 0.0
    for tid in _topological(board, views):
        view = views[tid]
        work = view.work_s or DEFAULT_WORK_S
        unmet = [d for d in board.waiting_on(tid) if d.depends_on in views]
        ready = max(
            (_edge(d, views, start, finish, ready_at, timeline, now) for d in unmet), default=now
        )
        ready_at[tid] = ready
        if view.status == "completed":
            start[tid] = finish[tid] = now
            continue
        began = timeline.started.get(tid)
        if tid == start_now:
            s = now
        elif began is not None and view.status in _STARTED | {"completed_tentative"}:
            s = began
        else:
            s = ready
        done = view.status == "completed_tentative"
        start[tid] = s
        finish[tid] = max(now, s + work) if not done else now
        if view.status in _SPECULATIVE:
            finish[tid] = max(finish[tid], ready)  # released only once its check passes
        remaining += max(0.0, finish[tid] - max(now, s)) if not done else 0.0
    cp = max(finish.values(), default=now)
    makespan = max(cp, now + remaining / max(1, workers))
    return Forecast(now=now, start=start, finish=finish, ready_at=ready_at, makespan=makespan)


def _edge(
    dep: Dependency,
    views: dict[TaskId, TaskView],
    start: dict[TaskId, float],
    finish: dict[TaskId, float],
    ready_at: dict[TaskId, float],
    timeline: Timeline,
    now: float,
) -> float:
    """When an unmet edge would be met."""
    pred = views[dep.depends_on]
    if dep.depends_on not in start:  # not yet placed (cannot happen in topological order)
        return now
    if dep.milestone is None and dep.kind != "requires_output":
        return finish[dep.depends_on]
    work = pred.work_s or DEFAULT_WORK_S
    at = start[dep.depends_on] + timeline.fraction(dep.milestone) * work
    if pred.status in _SPECULATIVE:
        # Its milestones are held back until its own check passes.
        at = max(at, ready_at[dep.depends_on])
    return min(max(now, at), finish[dep.depends_on])


def _topological(board: TaskBoard, views: dict[TaskId, TaskView]) -> list[TaskId]:
    """The tasks with every blocking predecessor first (creation order among equals)."""
    indegree = dict.fromkeys(views, 0)
    for tid in views:
        for dep in board.dependencies(tid):
            if dep.blocking and dep.depends_on in views:
                indegree[tid] += 1
    order = sorted((t for t, n in indegree.items() if n == 0), key=lambda t: views[t].created_order)
    for tid in order:  # grows while we walk it (Kahn's algorithm)
        for dep in board.dependents(tid):
            if dep.blocking and dep.task_id in indegree:
                indegree[dep.task_id] -= 1
                if indegree[dep.task_id] == 0:
                    order.append(dep.task_id)
    return order

"""The task dependency graph: cycle check, incremental readiness, priority inheritance.

How this works and why:

* **Edges.** A :class:`Dependency` says that ``task_id`` (the dependent) depends on
  ``depends_on`` (the predecessor), with a kind and an optional milestone of the predecessor.
  ``blocks`` and ``requires_output`` edges are *blocking*; ``informs`` edges never block.
  Two edges are the same edge when all four fields match, so adding one twice is a no-op.

* **Cycles.** Only blocking edges count, milestone edges included: a cycle of them is a
  deadlock (or, for milestones, a wait that may never end), while an ``informs`` edge only
  shares output and so may point "backwards" freely. A self-dependency is refused whatever
  its kind, since it can never mean anything.

* **When an edge is met** (SPEC §3.6, elixir notes §14.5): a milestone edge when the
  predecessor emitted that milestone, whatever its status, or completed (a completed task
  can emit nothing more, so waiting on would be a deadlock: completion implies every
  milestone); a ``blocks`` edge when the
  predecessor is ``completed``; a ``requires_output`` edge when the predecessor is
  ``completed`` or has produced output (a partial-result chunk or the ``partially_complete``
  status), so a pipeline stage may start on the first chunk. All these facts only ever grow
  (``completed`` is final, milestones are never taken back, produced output stays produced),
  so an edge goes from unmet to met once and never back. That is what makes readiness cheap:
  each task keeps the set of its unmet blocking edges, and an event about a predecessor
  re-checks only that predecessor's outgoing edges.

* **Priority inheritance.** A blocking edge *lends* the dependent's priority to the
  predecessor while the dependent is unfinished and the predecessor still owes what the edge
  waits for: the milestone for a milestone edge, its completion otherwise (a
  ``requires_output`` dependent that started on the first chunk still consumes the later
  ones, so the producer keeps the priority until it is done). The effective priority is
  ``min(base, effective priority of every lending dependent)``, which is transitive. Lending
  edges are a subset of the acyclic blocking edges, so a worklist that recomputes a node and
  re-queues its predecessors only when its value changed always terminates, and it touches
  only the part of the graph the change can reach. The Elixir system had
  ``propagate_priority`` but never called it (elixir notes §24 item 2); here every change of
  priority, edge, status or milestone recomputes automatically, and priorities also fall
  back down when the lending dependent finishes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.records import DepKind, TaskStatus
from loomkin.ids import TaskId

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "FINISHED_STATUSES",
    "Dependency",
    "GraphChanges",
    "TaskGraph",
]

FINISHED_STATUSES: frozenset[TaskStatus] = frozenset({"completed", "failed", "cancelled"})
"""Statuses of tasks that no longer run; a finished dependent lends no priority."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """One edge of the task graph: ``task_id`` depends on ``depends_on``."""

    task_id: TaskId
    """The dependent: the task that waits (or, for ``informs``, reads)."""
    depends_on: TaskId
    """The predecessor."""
    kind: DepKind = "blocks"
    """``blocks``, ``requires_output`` (both blocking) or ``informs`` (never blocks)."""
    milestone: str | None = None
    """A named milestone of the predecessor to wait for instead of its completion."""

    @property
    def blocking(self) -> bool:
        """Whether the edge can hold the dependent up (and so counts for cycles)."""
        return self.kind != "informs"

    def describe(self) -> str:
        """Return a short readable form, e.g. ``"a waits for b (blocks, milestone 'x')"``."""
        what = self.kind if self.milestone is None else f"{self.kind}, milestone {self.milestone!r}"
        return f"{self.task_id} waits for {self.depends_on} ({what})"


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphChanges:
    """What the operations since the last :meth:`TaskGraph.take_changes` changed."""

    unblocked: tuple[TaskId, ...] = ()
    """Tasks whose last unmet blocking edge became met, in the order it happened."""
    priorities: tuple[tuple[TaskId, int, int], ...] = ()
    """``(task_id, old effective, new effective)`` for every effective priority that moved."""
    retagged: tuple[TaskId, ...] = ()
    """Every task whose effective priority or its origin changed (a superset of the above)."""


@dataclass(slots=True, kw_only=True)
class _Node:
    """Mutable graph state of one task (internal)."""

    task_id: TaskId
    base: int
    order: int
    status: TaskStatus = "pending"
    output: bool = False
    """Latched once the task produced output (a chunk, ``partially_complete`` or done)."""
    milestones: set[str] = field(default_factory=set)
    eff: int = 0
    source: TaskId | None = None
    """Task whose base priority gives ``eff`` when inherited; ``None`` when it is our base."""
    via: TaskId | None = None
    """The direct dependent through which ``eff`` is inherited."""
    deps: dict[Dependency, None] = field(default_factory=dict)
    """Edges where this task is the dependent (an insertion-ordered set)."""
    dependents: list[Dependency] = field(default_factory=list)
    """Edges where this task is the predecessor."""
    unmet: set[Dependency] = field(default_factory=set)


class TaskGraph:
    """Dependency DAG over task ids with incremental readiness and priority inheritance.

    Pure and synchronous. Mutating methods assume their input was validated (unknown ids
    raise ``KeyError``); :meth:`find_cycle` is the check to run before :meth:`add_edge`.
    Effects accumulate until :meth:`take_changes` collects them.
    """

    __slots__ = ("_nodes", "_old", "_unblocked")

    def __init__(self) -> None:
        self._nodes: dict[TaskId, _Node] = {}
        self._unblocked: dict[TaskId, None] = {}
        self._old: dict[TaskId, int] = {}

    # ---- nodes -------------------------------------------------------------------------

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._nodes

    def add_task(self, task_id: TaskId, priority: int, order: int) -> None:
        """Add a pending task with base ``priority`` and creation ``order``."""
        self._nodes[task_id] = _Node(task_id=task_id, base=priority, order=order, eff=priority)

    def set_priority(self, task_id: TaskId, priority: int) -> None:
        """Change a task's base priority and re-derive the effective ones it reaches."""
        node = self._nodes[task_id]
        if node.base != priority:
            node.base = priority
            self._propagate((task_id,))

    def set_status(self, task_id: TaskId, status: TaskStatus) -> None:
        """Record a status change: may meet outgoing edges and stop or resume lending."""
        node = self._nodes[task_id]
        was_finished = node.status in FINISHED_STATUSES
        node.status = status
        if status in ("completed", "partially_complete"):
            node.output = True
        self._refresh_outgoing(node)
        if status == "completed":
            # Done: the edges waiting for our completion stop lending to us.
            self._propagate((task_id,))
        if was_finished != (status in FINISHED_STATUSES):
            # Our own edges start or stop lending our priority to our predecessors.
            self._propagate(dep.depends_on for dep in node.deps if dep.blocking)

    def add_milestone(self, task_id: TaskId, name: str) -> bool:
        """Record an emitted milestone; returns ``False`` when it was already emitted."""
        node = self._nodes[task_id]
        if name in node.milestones:
            return False
        node.milestones.add(name)
        self._refresh_outgoing(node)
        if any(dep.milestone == name for dep in node.dependents):
            self._propagate((task_id,))
        return True

    def mark_output(self, task_id: TaskId) -> None:
        """Record that a task produced output (a partial-result chunk)."""
        node = self._nodes[task_id]
        if not node.output:
            node.output = True
            self._refresh_outgoing(node)

    # ---- edges -------------------------------------------------------------------------

    def has_edge(self, dep: Dependency) -> bool:
        """Whether exactly this edge is already in the graph."""
        return dep in self._nodes[dep.task_id].deps

    def add_edge(self, dep: Dependency) -> bool:
        """Add an edge (check :meth:`find_cycle` first); ``False`` when already present."""
        node = self._nodes[dep.task_id]
        if dep in node.deps:
            return False
        node.deps[dep] = None
        self._nodes[dep.depends_on].dependents.append(dep)
        if dep.blocking and not self.is_met(dep):
            node.unmet.add(dep)
        if self.lends(dep):
            self._propagate((dep.depends_on,))
        return True

    def find_cycle(self, task_id: TaskId, depends_on: TaskId) -> tuple[TaskId, ...] | None:
        """Return the cycle a blocking edge ``task_id → depends_on`` would close, if any.

        The path reads "waits for": ``(a, b, c, a)`` means a waits for b, b for c, c for a.
        """
        if task_id == depends_on:
            return (task_id, task_id)
        parent: dict[TaskId, TaskId] = {depends_on: task_id}
        stack = [depends_on]
        while stack:
            current = stack.pop()
            for dep in self._nodes[current].deps:
                nxt = dep.depends_on
                if not dep.blocking or nxt in parent:
                    continue
                parent[nxt] = current
                if nxt == task_id:
                    return self._cycle_path(parent, task_id)
                stack.append(nxt)
        return None

    @staticmethod
    def _cycle_path(parent: dict[TaskId, TaskId], task_id: TaskId) -> tuple[TaskId, ...]:
        path = [task_id]
        current = parent[task_id]
        while current != task_id:
            path.append(current)
            current = parent[current]
        path.append(task_id)
        path.reverse()
        return tuple(path)

    def deps(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """Edges where ``task_id`` is the dependent, in the order they were added."""
        return tuple(self._nodes[task_id].deps)

    def dependents(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """Edges where ``task_id`` is the predecessor, in the order they were added."""
        return tuple(self._nodes[task_id].dependents)

    # ---- queries -----------------------------------------------------------------------

    def is_met(self, dep: Dependency) -> bool:
        """Whether the edge no longer holds its dependent up (``informs`` always is)."""
        pred = self._nodes[dep.depends_on]
        if dep.milestone is not None:
            return dep.milestone in pred.milestones or pred.status == "completed"
        if dep.kind == "blocks":
            return pred.status == "completed"
        if dep.kind == "requires_output":
            return pred.status == "completed" or pred.output
        return True

    def lends(self, dep: Dependency) -> bool:
        """Whether the edge currently lends the dependent's priority to the predecessor."""
        if not dep.blocking or self._nodes[dep.task_id].status in FINISHED_STATUSES:
            return False
        pred = self._nodes[dep.depends_on]
        if dep.milestone is not None:
            return dep.milestone not in pred.milestones and pred.status != "completed"
        return pred.status != "completed"

    def is_ready(self, task_id: TaskId) -> bool:
        """Whether every blocking edge of the task is met (its status is not considered)."""
        return not self._nodes[task_id].unmet

    def unmet(self, task_id: TaskId) -> tuple[Dependency, ...]:
        """The task's unmet blocking edges, in the order they were added."""
        node = self._nodes[task_id]
        return tuple(dep for dep in node.deps if dep in node.unmet)

    def effective(self, task_id: TaskId) -> int:
        """The effective priority (``≤`` the base priority)."""
        return self._nodes[task_id].eff

    def base(self, task_id: TaskId) -> int:
        """The base priority."""
        return self._nodes[task_id].base

    def inherited_from(self, task_id: TaskId) -> tuple[TaskId, TaskId] | None:
        """``(origin, via)`` when the effective priority is inherited, else ``None``.

        ``origin`` is the task whose base priority it is; ``via`` the direct dependent.
        """
        node = self._nodes[task_id]
        if node.source is None or node.via is None:
            return None
        return node.source, node.via

    def take_changes(self) -> GraphChanges:
        """Return and forget what changed since the previous call."""
        moved = [
            (tid, old, self._nodes[tid].eff)
            for tid, old in self._old.items()
            if old != self._nodes[tid].eff
        ]
        moved.sort(key=lambda change: self._nodes[change[0]].order)
        changes = GraphChanges(
            unblocked=tuple(self._unblocked), priorities=tuple(moved), retagged=tuple(self._old)
        )
        self._unblocked.clear()
        self._old.clear()
        return changes

    # ---- internals ---------------------------------------------------------------------

    def _refresh_outgoing(self, pred: _Node) -> None:
        for dep in pred.dependents:
            node = self._nodes[dep.task_id]
            if dep in node.unmet and self.is_met(dep):
                node.unmet.discard(dep)
                if not node.unmet:
                    self._unblocked[dep.task_id] = None

    def _compute(self, node: _Node) -> tuple[int, TaskId | None, TaskId | None]:
        best, source, via = node.base, None, None
        for dep in node.dependents:
            if self.lends(dep):
                dependent = self._nodes[dep.task_id]
                if dependent.eff < best:
                    best = dependent.eff
                    source = dependent.source if dependent.source is not None else dep.task_id
                    via = dep.task_id
        return best, source, via

    def _propagate(self, start: Iterable[TaskId]) -> None:
        queue = deque(dict.fromkeys(start))
        queued = set(queue)
        while queue:
            task_id = queue.popleft()
            queued.discard(task_id)
            node = self._nodes[task_id]
            eff, source, via = self._compute(node)
            node.via = via
            if eff == node.eff and source == node.source:
                continue
            self._old.setdefault(task_id, node.eff)
            node.eff, node.source = eff, source
            for dep in node.deps:
                if dep.blocking and dep.depends_on not in queued:
                    queued.add(dep.depends_on)
                    queue.append(dep.depends_on)

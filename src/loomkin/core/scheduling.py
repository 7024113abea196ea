"""The pure assignment policy: which agent gets which ready task, and why (SPEC §3.10).

How this works and why:

* **Task types.** :func:`infer_task_type` reads a task's title the way the Elixir system did
  (elixir notes §10): for each of eight types, count how many of its keywords occur as
  substrings of the lower-cased text; the highest count wins, ties go to the alphabetically
  first type, and no hit at all means ``coding``.
* **Capability.** :class:`CapabilityStats` is a projection of task events: when a task with
  an owner ends ``completed`` (a success) or ``failed`` (a failure), the owner's record for
  the task's type is updated; so is a ``NegotiationResolved`` in which the assignee declined
  or counter-proposed (a mark against its fit for that type). The score is
  ``successes / total × log2(total + 1)``: the success rate, weighted up by experience, and
  0 without history.
* **Choice.** :func:`choose_agent` ranks candidates by, in order: idle before busy; a role
  matching the task's role (when the task names one); higher capability score; fewer
  failures (and declines) of the type; fewer active tasks; then name and id, so the same
  inputs always give the same answer.
* **Plans.** :func:`plan_assignments` walks the ready tasks by (effective priority, creation
  order) and gives each the best remaining idle agent. Because the order uses the
  *effective* priority, a low-priority task that blocks an urgent one is assigned before
  medium work (no priority inversion). Every assignment carries a readable reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from loomkin.core.events.negotiation import NegotiationResolved
from loomkin.core.events.tasks import TaskAssigned, TaskClaimed, TaskCreated, TaskStatusChanged
from loomkin.ids import AgentId, TaskId

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events.base import Event
    from loomkin.core.taskview import TaskView

__all__ = [
    "TASK_TYPES",
    "TYPE_KEYWORDS",
    "AgentCandidate",
    "Assignment",
    "CapabilityStats",
    "TaskType",
    "capability_score",
    "choose_agent",
    "infer_task_type",
    "plan_assignments",
    "task_type_of",
]

TaskType = Literal[
    "coding",
    "debugging",
    "documentation",
    "infrastructure",
    "planning",
    "research",
    "review",
    "testing",
]
TASK_TYPES: tuple[TaskType, ...] = get_args(TaskType)
"""Every task type, in alphabetical order (the tie-break order)."""

TYPE_KEYWORDS: Mapping[TaskType, tuple[str, ...]] = {
    "coding": (
        "implement", "write", "code", "create", "add", "build", "fix", "refactor", "module",
        "function", "endpoint",
    ),
    "research": (
        "research", "investigate", "explore", "analyze", "find", "search", "look", "discover",
        "examine", "study",
    ),
    "review": ("review", "check", "audit", "inspect", "validate", "verify", "assess", "evaluate"),
    "testing": ("test", "spec", "assert", "coverage", "unit", "integration"),
    "planning": (
        "plan", "design", "decompose", "break", "architect", "outline", "structure", "organize",
    ),
    "documentation": ("document", "readme", "doc", "comment", "explain", "describe"),
    "debugging": (
        "debug", "diagnose", "troubleshoot", "trace", "error", "crash", "bug", "issue",
    ),
    "infrastructure": (
        "deploy", "config", "setup", "ci", "cd", "pipeline", "docker", "container", "infra",
    ),
}  # fmt: skip
"""Keywords per type, matched as substrings of the lower-cased text (elixir notes §10)."""


def infer_task_type(text: str | None) -> TaskType:
    """Guess a task's type from its text.

    Returns:
        The type with the most distinct keyword hits; ties go to the alphabetically first
        type; ``"coding"`` when nothing matches or the text is empty.
    """
    if not text:
        return "coding"
    lowered = text.lower()
    best: TaskType = "coding"
    best_count = 0
    for task_type in TASK_TYPES:  # alphabetical, and only a strictly higher count wins
        count = sum(1 for keyword in TYPE_KEYWORDS[task_type] if keyword in lowered)
        if count > best_count:
            best, best_count = task_type, count
    return best


def task_type_of(task: TaskView) -> TaskType:
    """The type used for capability stats: inferred from the task's title."""
    return infer_task_type(task.title)


def capability_score(successes: int, total: int) -> float:
    """``successes / total × log2(total + 1)``, or 0.0 without history."""
    if total <= 0:
        return 0.0
    return successes / total * math.log2(total + 1)


class CapabilityStats:
    """Per (agent, task type) success counts, projected from task events.

    ``apply`` follows ``TaskCreated`` (the type, from the title), ``TaskAssigned`` and
    ``TaskClaimed`` (the owner), and ``TaskStatusChanged``: ``completed`` counts a success
    and ``failed`` a failure for the owner at that moment; ``pending`` drops the owner.
    A ``NegotiationResolved`` whose assignee declined counts a failure for the assignee.
    """

    __slots__ = ("_counts", "_declines", "_tasks")

    def __init__(self) -> None:
        self._tasks: dict[TaskId, tuple[TaskType, AgentId | None]] = {}
        self._counts: dict[tuple[AgentId, TaskType], tuple[int, int]] = {}
        self._declines: dict[tuple[AgentId, TaskType], int] = {}

    def apply(self, event: Event) -> None:
        """Fold one event in; events other than the four above are ignored."""
        if isinstance(event, TaskCreated):
            self._tasks[event.task_id] = (infer_task_type(event.title), None)
            return
        if isinstance(event, NegotiationResolved):
            declined = self._tasks.get(event.task_id)
            if event.declined and declined is not None:
                self.record(event.agent_id, declined[0], success=False)
                key = (event.agent_id, declined[0])
                self._declines[key] = self._declines.get(key, 0) + 1
            return
        if not isinstance(event, TaskAssigned | TaskClaimed | TaskStatusChanged):
            return
        known = self._tasks.get(event.task_id)
        if known is None:
            return
        task_type, owner = known
        if isinstance(event, TaskAssigned | TaskClaimed):
            self._tasks[event.task_id] = (task_type, event.owner)
        elif event.status == "pending":
            self._tasks[event.task_id] = (task_type, None)
        elif event.status in ("completed", "failed"):
            agent = owner if owner is not None else event.by
            if agent is not None:
                self.record(agent, task_type, success=event.status == "completed")

    def record(self, agent_id: AgentId, task_type: TaskType, *, success: bool) -> None:
        """Count one outcome directly (for seeding from history)."""
        successes, total = self._counts.get((agent_id, task_type), (0, 0))
        self._counts[(agent_id, task_type)] = (successes + int(success), total + 1)

    def counts(self, agent_id: AgentId, task_type: TaskType) -> tuple[int, int]:
        """``(successes, total)`` of the agent for the type."""
        return self._counts.get((agent_id, task_type), (0, 0))

    def declines(self, agent_id: AgentId, task_type: TaskType) -> int:
        """How many tasks of the type the agent declined (or counter-proposed away)."""
        return self._declines.get((agent_id, task_type), 0)

    def avoids(
        self, agent_id: AgentId, task_type: TaskType, team: Sequence[AgentCandidate]
    ) -> bool:
        """True when the agent declined the type, never succeeded at it, and a teammate has.

        Such an agent would hand the task on again: the task waits for the teammate instead.
        """
        if not self.declines(agent_id, task_type) or self.counts(agent_id, task_type)[0]:
            return False
        return any(
            c.agent_id != agent_id and self.counts(c.agent_id, task_type)[0] > 0 for c in team
        )

    def score(self, agent_id: AgentId, task_type: TaskType) -> float:
        """The agent's :func:`capability_score` for the type."""
        return capability_score(*self.counts(agent_id, task_type))


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCandidate:
    """An agent the scheduler may give a task to."""

    agent_id: AgentId
    name: str
    role: str = ""
    """The agent's role (``coder``, ``tester`` …); matched against ``TaskView.role``."""
    idle: bool = True
    """Whether the agent is idle right now."""
    status: str = "idle"
    """The agent's status (a ``done`` or ``crashed`` agent is waited for by no task)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """The scheduler's decision for one task, with a reason for the activity feed."""

    task_id: TaskId
    agent_id: AgentId
    agent_name: str
    reason: str
    """Readable: why this agent (and, in a plan, why this task now)."""


def _role_matches(task: TaskView, agent: AgentCandidate) -> bool:
    return bool(task.role) and task.role.strip().lower() == agent.role.strip().lower()


def choose_agent(
    task: TaskView,
    candidates: Sequence[AgentCandidate],
    stats: CapabilityStats,
    load: Mapping[AgentId, int],
) -> Assignment | None:
    """Pick the agent for ``task``: idle, role match, capability, load, then name.

    Args:
        task: the task to place.
        candidates: agents that may take it (the caller drops coordination-only roles).
        stats: capability history.
        load: active task count per agent (missing means 0).

    Returns:
        The choice with its reason, or ``None`` when there are no candidates.
    """
    if not candidates:
        return None
    task_type = task_type_of(task)

    def rank(agent: AgentCandidate) -> tuple[bool, bool, float, int, int, str, str]:
        role_miss = bool(task.role) and not _role_matches(task, agent)
        successes, total = stats.counts(agent.agent_id, task_type)
        return (
            not agent.idle,
            role_miss,
            -capability_score(successes, total),
            # Equal scores (0 without successes): fewer failures and declines first, so an
            # agent that declined this kind of task is not offered it again before others.
            total - successes,
            load.get(agent.agent_id, 0),
            agent.name,
            agent.agent_id,
        )

    best = min(candidates, key=rank)
    return Assignment(
        task_id=task.task_id,
        agent_id=best.agent_id,
        agent_name=best.name,
        reason=_agent_reason(task, best, task_type, stats, load.get(best.agent_id, 0)),
    )


def _agent_reason(
    task: TaskView, agent: AgentCandidate, task_type: TaskType, stats: CapabilityStats, active: int
) -> str:
    parts = [f"{agent.name} is idle" if agent.idle else f"{agent.name} is busy (no idle agent)"]
    if task.role:
        parts.append(
            f"role {agent.role!r} matches"
            if _role_matches(task, agent)
            else f"no idle agent has role {task.role!r}"
        )
    successes, total = stats.counts(agent.agent_id, task_type)
    if total:
        score = capability_score(successes, total)
        parts.append(f"best at {task_type} (score {score:.2f}, {successes}/{total} succeeded)")
    else:
        parts.append(f"no {task_type} history yet")
    parts.append(f"{active} active task{'s' if active != 1 else ''}")
    return "; ".join(parts)


def plan_assignments(
    ready_tasks: Sequence[TaskView],
    agents: Sequence[AgentCandidate],
    stats: CapabilityStats,
    load: Mapping[AgentId, int] | None = None,
    team: Sequence[AgentCandidate] = (),
) -> list[Assignment]:
    """Pair ready tasks with idle agents, most urgent task first, one task per agent.

    A task is not given to an agent that :meth:`CapabilityStats.avoids` its type when a
    teammate (in ``team``: every agent of the team, busy ones included) has succeeded at it:
    it waits for that teammate, rather than be declined again.

    Args:
        ready_tasks: available tasks (``TaskBoard.ready_tasks()``); re-sorted here by
            (effective priority, creation order).
        agents: the roster; only idle ones are used.
        stats: capability history.
        load: active task count per agent (missing means 0).
        team: every working agent of the team, busy ones included (see above).

    Returns:
        One assignment per placed task, in placing order; stops when idle agents run out.
    """
    pool = [agent for agent in agents if agent.idle]
    counts = dict(load or {})
    plan: list[Assignment] = []
    for task in sorted(ready_tasks, key=lambda t: (t.effective_priority, t.created_order)):
        if not pool:
            break
        task_type = task_type_of(task)
        fit = [a for a in pool if not stats.avoids(a.agent_id, task_type, team)]
        choice = choose_agent(task, fit, stats, counts)
        if choice is None:
            continue
        pool = [agent for agent in pool if agent.agent_id != choice.agent_id]
        counts[choice.agent_id] = counts.get(choice.agent_id, 0) + 1
        plan.append(
            Assignment(
                task_id=choice.task_id,
                agent_id=choice.agent_id,
                agent_name=choice.agent_name,
                reason=f"{_task_reason(task)}; {choice.reason}",
            )
        )
    return plan


def _task_reason(task: TaskView) -> str:
    if task.effective_priority < task.priority and task.inherited_from is not None:
        return (
            f"most urgent ready task: p{task.effective_priority} inherited from "
            f"{task.inherited_from} (own priority p{task.priority})"
        )
    return f"most urgent ready task: p{task.effective_priority}"

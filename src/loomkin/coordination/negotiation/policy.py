"""How the scheduler's policy answers an objection (pure: no I/O, no clock).

* A counter-proposal naming another agent is accepted when that agent can take the task (a
  task-taking agent of the task's team, still working, that has not declined it itself): the
  assignee knows its teammates' strengths better than an estimate built from a few outcomes.
  A busy agent is fine; the task waits for it, as any assignment to a busy agent does.
* A decline moves the task to the best other agent by the scheduler's own ranking
  (:func:`~loomkin.core.scheduling.choose_agent`: idle first, then capability, failures and
  load), never back to an agent that declined it.
* A request for clarification or a flagged conflict is not the policy's to answer: the
  assignment stands and the question goes to the task's creator (or the team's lead).
* Nobody else can take the task: the assignment stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.coordination.base import COORDINATION_ROLES, Member
from loomkin.core.scheduling import AgentCandidate, choose_agent

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.coordination.negotiation.records import Objection
    from loomkin.core.scheduling import CapabilityStats
    from loomkin.core.taskview import TaskView
    from loomkin.ids import AgentId

__all__ = ["Verdict", "can_take", "policy_verdict"]

_GONE = frozenset({"done", "crashed", "retired"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What to do: move the task to ``target``, or keep it (``target`` is None), and why."""

    target: Member | None
    reason: str


def can_take(member: Member, task: TaskView, excluded: set[str]) -> str | None:
    """Why ``member`` cannot take ``task`` (``None`` when it can)."""
    if member.team_id != task.team_id:
        return f"{member.name} is not in the task's team"
    if member.role in COORDINATION_ROLES:
        return f"{member.name} is a {member.role} and does not take tasks"
    if member.status in _GONE:
        return f"{member.name} is no longer working ({member.status})"
    if member.agent_id in excluded:
        return f"{member.name} declined this task already"
    return None


def policy_verdict(
    task: TaskView,
    objection: Objection,
    members: Sequence[Member],
    stats: CapabilityStats,
    load: Mapping[AgentId, int],
    excluded: set[str],
) -> Verdict:
    """The policy's answer to ``objection`` (see the module docstring)."""
    if objection.counter_kind in ("clarify", "conflict"):
        what = "question" if objection.counter_kind == "clarify" else "conflict"
        return Verdict(target=None, reason=f"the {what} was passed on; the assignment stands")
    if objection.suggested is not None:
        suggested = next((m for m in members if m.agent_id == objection.suggested), None)
        why = "no such agent" if suggested is None else can_take(suggested, task, excluded)
        if suggested is not None and why is None:
            return Verdict(
                target=suggested, reason=f"counter-proposal accepted: {objection.reason}"
            )
        if objection.response == "counter":
            return Verdict(target=None, reason=f"suggestion refused ({why}); the assignment stands")
    others = [m for m in members if can_take(m, task, excluded) is None]
    candidates = [
        AgentCandidate(
            agent_id=m.agent_id,
            name=m.name,
            role=m.role,
            idle=m.status == "idle" and m.task_id is None,
        )
        for m in others
    ]
    choice = choose_agent(task, candidates, stats, load)
    if choice is None:
        return Verdict(target=None, reason="no other agent can take it; the assignment stands")
    target = next(m for m in others if m.agent_id == choice.agent_id)
    return Verdict(
        target=target, reason=f"declined; moved to the best other agent: {choice.reason}"
    )

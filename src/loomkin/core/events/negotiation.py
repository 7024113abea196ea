"""Negotiation of assignments (SPEC §3.9): opened, countered (or declined), resolved.

A negotiation opens in the same batch as the assignment it is about; the assignee answers
with an accept, a decline or a counter-proposal; the assigner (the scheduler's policy, or the
lead who assigned) resolves it, or the window elapses and the assignment stands. The outcome
moves the task (a ``reassigned`` outcome is committed with the release and the new
``TaskAssigned``), and a decline counts against the decliner's fit for the task's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import Event, register
from loomkin.ids import AgentId, TaskId, TeamId

__all__ = [
    "CounterKind",
    "NegotiationCountered",
    "NegotiationOpened",
    "NegotiationOutcome",
    "NegotiationResolved",
    "ResponseKind",
]

ResponseKind = Literal["decline", "counter"]
CounterKind = Literal["suggest_agent", "clarify", "conflict"]
NegotiationOutcome = Literal["accepted", "kept", "reassigned"]
"""``accepted``: the assignee took the task; ``kept``: the assigner overrode the objection or
the window elapsed (the assignment stands); ``reassigned``: the task moved to another agent."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationOpened(Event):
    """An assignment is open to negotiation until ``deadline`` (clock time, unix seconds)."""

    kind: Literal["negotiation_opened"] = "negotiation_opened"
    negotiation_id: str
    task_id: TaskId
    team_id: TeamId
    agent_id: AgentId
    """The assignee."""
    agent_name: str
    assigner: str
    """Who assigned: ``scheduler`` (its policy resolves) or an agent's name."""
    assigner_id: AgentId | None = None
    """The assigning agent (a lead), who resolves; ``None`` when the policy does."""
    window_s: float = 30.0
    deadline: float = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationCountered(Event):
    """The assignee declined, or counter-proposed; the window now ends at ``deadline``."""

    kind: Literal["negotiation_countered"] = "negotiation_countered"
    negotiation_id: str
    task_id: TaskId
    agent_id: AgentId
    agent_name: str
    response: ResponseKind
    counter_kind: CounterKind | None = None
    suggested_agent_id: AgentId | None = None
    suggested_name: str = ""
    reason: str = ""
    deadline: float = 0.0


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationResolved(Event):
    """How a negotiation ended, who decided and why."""

    kind: Literal["negotiation_resolved"] = "negotiation_resolved"
    negotiation_id: str
    task_id: TaskId
    agent_id: AgentId
    """The assignee the negotiation was about."""
    outcome: NegotiationOutcome
    decided_by: str
    """``agent`` (an accept), ``policy``, ``window`` (it elapsed) or the lead's name."""
    new_owner: AgentId | None = None
    new_owner_name: str = ""
    declined: bool = False
    """True when the assignee declined or counter-proposed (a mark against its fit)."""
    reason: str = ""

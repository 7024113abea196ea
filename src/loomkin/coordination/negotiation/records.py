"""One negotiation as the log describes it, the assignee's objection, and the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from loomkin.core.events.negotiation import (
    CounterKind,
    NegotiationCountered,
    NegotiationOpened,
    NegotiationResolved,
    ResponseKind,
)
from loomkin.ids import AgentId

__all__ = ["Negotiation", "NegotiationSettings", "Objection", "Resolution"]

Resolution = Literal["accept", "override", "reassign"]
"""What an assigner does with an objection: accept it (move the task as the assignee asked, or
to the best other agent after a decline), override it (the assignment stands), or reassign the
task to an agent of its choice."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NegotiationSettings:
    """``[negotiation]`` in ``loomkin.toml``."""

    enabled: bool = True
    """Open a negotiation on every assignment to an agent that takes tasks."""
    window_s: float = 30.0
    """How long an assignee has to object before the assignment simply stands."""
    counter_window_s: float = 60.0
    """How long an assigner has to answer a counter-proposal (then the assignment stands)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Objection:
    """What an assignee says against its assignment."""

    response: ResponseKind
    counter_kind: CounterKind | None = None
    suggested: AgentId | None = None
    suggested_name: str = ""
    reason: str = ""

    @property
    def declines(self) -> bool:
        """True when the assignee does not want the task (a mark against its fit)."""
        return self.response == "decline" or self.counter_kind == "suggest_agent"


@dataclass(slots=True)
class Negotiation:
    """One negotiation: opened, maybe countered, then resolved (or made moot)."""

    opened: NegotiationOpened
    deadline: float
    countered: NegotiationCountered | None = None
    resolved: NegotiationResolved | None = None
    moot: str = ""
    """Why it ended without a resolution (the task ended or moved first), if it did."""
    declined_by: set[str] = field(default_factory=set)

    @property
    def open(self) -> bool:
        """True until it is resolved or made moot."""
        return self.resolved is None and not self.moot

    @property
    def status(self) -> str:
        """``open``, ``countered``, the outcome, or ``moot``."""
        if self.resolved is not None:
            return self.resolved.outcome
        if self.moot:
            return "moot"
        return "countered" if self.countered is not None else "open"

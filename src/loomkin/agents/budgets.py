"""Budgets: what the next model call may spend, and whom to tell when it may not.

Budgets are checked before every model call, for the agent, its team and the session. A
breach does not kill the agent: it pauses, its finished work stays, and its lead (or the
Concierge) is told with an urgent message, so the user can raise the budget and resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.events import MessageSent

__all__ = ["Breach", "budget_breach", "budget_notice"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    """A budget the next model call would break."""

    scope: Literal["agent", "team", "session"]
    limit_usd: float | None = None
    spent_usd: float = 0.0
    limit_tokens: int | None = None
    spent_tokens: int = 0
    description: str
    """Readable, for the agent's status and the lead's message."""


def budget_breach(session: SessionRuntime, agent: Agent) -> Breach | None:
    """The budget ``agent``'s next model call would break, or ``None``."""
    b = session.settings.budgets
    everyone = list(session.agents.values())
    team = [a for a in everyone if a.team_id == agent.team_id]
    scopes: tuple[
        tuple[Literal["agent", "team", "session"], list[Agent], float | None, int | None], ...
    ]
    scopes = (
        ("agent", [agent], b.agent_usd, b.agent_tokens),
        ("team", team, b.team_usd, b.team_tokens),
        ("session", everyone, b.session_usd, b.session_tokens),
    )
    for scope, members, usd, tokens in scopes:
        spent = sum(a.memory.cost_usd for a in members)
        used = sum(a.memory.total_tokens() for a in members)
        if usd is not None and spent >= usd:
            text = f"{scope} budget of ${usd:.2f} reached (spent ${spent:.4f})"
            return Breach(
                scope=scope, limit_usd=usd, spent_usd=spent, spent_tokens=used, description=text
            )
        if tokens is not None and used >= tokens:
            text = f"{scope} budget of {tokens} tokens reached (used {used})"
            return Breach(
                scope=scope,
                limit_tokens=tokens,
                spent_usd=spent,
                spent_tokens=used,
                description=text,
            )
    return None


def budget_notice(session: SessionRuntime, agent: Agent, description: str) -> list[MessageSent]:
    """The urgent message telling the lead (or the Concierge) that ``agent`` paused."""
    lead = _lead_for(session, agent)
    if lead is None or lead is agent:
        return []
    return [
        session.message_event(
            msg_type="budget_exceeded",
            content=(
                f"Agent {agent.name} paused: {description}. Its finished work is kept. "
                "Ask the user to raise the budget, or reassign the remaining work."
            ),
            to_agent=lead.agent_id,
        )
    ]


def _lead_for(session: SessionRuntime, agent: Agent) -> Agent | None:
    for role in ("lead", "concierge"):
        for candidate in session.agents.values():
            if candidate.role.name == role and candidate.team_id == agent.team_id:
                return candidate
    return session.find_agent(session.root_team_id, "concierge")

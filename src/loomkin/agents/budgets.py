"""Budgets: what the next model call may spend, as a pure function of limits and usage.

Budgets are checked before every model call, for the agent, its team and the session. A
breach does not kill the agent: it pauses, its finished work stays, and its lead (or the
Concierge) is told with an urgent message, so the user can raise the budget and resume.

:class:`BudgetBook` is the projection that knows the limits (``loomkin.toml``'s until a
``BudgetsChanged`` event replaces them) and each agent's spend (``ModelCallCompleted``, the
summarising call of a ``ContextCompacted``, and the judge's calls on the agent's
speculations, ``SpeculationJudged``); :func:`budget_breach` decides. A team's
spend includes its sub-teams' (a lead that spawns a sub-team does not get a fresh budget by
doing so), and an agent is held to the team budget of its own team and of every team above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    BudgetExceeded,
    BudgetsChanged,
    ContextCompacted,
    ModelCallCompleted,
    SpeculationJudged,
    TeamCreated,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from loomkin.core.events import RecordedEvent

__all__ = ["Breach", "BudgetBook", "Budgets", "Usage", "budget_breach"]

Scope = Literal["agent", "team", "session"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Budgets:
    """Token and cost limits; ``None`` means no limit."""

    session_usd: float | None = None
    team_usd: float | None = None
    agent_usd: float | None = None
    session_tokens: int | None = None
    team_tokens: int | None = None
    agent_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """What some agents spent so far."""

    cost_usd: float = 0.0
    tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(cost_usd=self.cost_usd + other.cost_usd, tokens=self.tokens + other.tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    """A budget the next model call would break."""

    scope: Scope
    limit_usd: float | None = None
    spent_usd: float = 0.0
    limit_tokens: int | None = None
    spent_tokens: int = 0
    description: str
    """Readable, for the agent's status and the lead's message."""


def budget_breach(limits: Budgets, *, agent: Usage, team: Usage, session: Usage) -> Breach | None:
    """The budget the next model call would break (the narrowest scope first), or ``None``."""
    scopes: tuple[tuple[Scope, Usage, float | None, int | None], ...] = (
        ("agent", agent, limits.agent_usd, limits.agent_tokens),
        ("team", team, limits.team_usd, limits.team_tokens),
        ("session", session, limits.session_usd, limits.session_tokens),
    )
    for scope, used, usd, tokens in scopes:
        if usd is not None and used.cost_usd >= usd:
            text = f"{scope} budget of ${usd:.2f} reached (spent ${used.cost_usd:.4f})"
            return Breach(
                scope=scope,
                limit_usd=usd,
                spent_usd=used.cost_usd,
                spent_tokens=used.tokens,
                description=text,
            )
        if tokens is not None and used.tokens >= tokens:
            text = f"{scope} budget of {tokens} tokens reached (used {used.tokens})"
            return Breach(
                scope=scope,
                limit_tokens=tokens,
                spent_usd=used.cost_usd,
                spent_tokens=used.tokens,
                description=text,
            )
    return None


@dataclass(slots=True)
class BudgetBook:
    """The limits and the spend of one session (a projection of its log)."""

    limits: Budgets
    _spent: dict[str, Usage] = field(default_factory=dict)
    _team_of: dict[str, str] = field(default_factory=dict)
    _parent_of: dict[str, str | None] = field(default_factory=dict)
    budget_paused: set[str] = field(default_factory=set)
    """Agents paused by a budget breach and not resumed since (raising the budget may)."""

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        match recorded.event:
            case BudgetExceeded(agent_id=agent_id):
                self.budget_paused.add(agent_id)
            case AgentStatusChanged(agent_id=agent_id, status=status) if status != "paused":
                self.budget_paused.discard(agent_id)
            case TeamCreated(team_id=team_id, parent_team_id=parent):
                self._parent_of[team_id] = parent
            case AgentSpawned(agent_id=agent_id, team_id=team_id):
                self._team_of[agent_id] = team_id
            case ModelCallCompleted(
                agent_id=agent_id, cost_usd=cost, input_tokens=i, output_tokens=o
            ):
                spent = self._spent.get(agent_id, Usage())
                self._spent[agent_id] = spent + Usage(cost_usd=cost, tokens=i + o)
            case ContextCompacted(
                agent_id=agent_id, cost_usd=cost, input_tokens=i, output_tokens=o
            ) if i or o:  # the summarising model call is spend like any other
                spent = self._spent.get(agent_id, Usage())
                self._spent[agent_id] = spent + Usage(cost_usd=cost, tokens=i + o)
            case SpeculationJudged(
                agent_id=agent_id, cost_usd=cost, input_tokens=i, output_tokens=o
            ):  # the judge's call on a speculation is charged to the speculating agent
                spent = self._spent.get(agent_id, Usage())
                self._spent[agent_id] = spent + Usage(cost_usd=cost, tokens=i + o)
            case BudgetsChanged() as changed:
                self.limits = Budgets(
                    session_usd=changed.session_usd,
                    team_usd=changed.team_usd,
                    agent_usd=changed.agent_usd,
                    session_tokens=changed.session_tokens,
                    team_tokens=changed.team_tokens,
                    agent_tokens=changed.agent_tokens,
                )
            case _:
                pass

    def caught_up(self) -> None:
        """Nothing to act on."""

    def spent(self, agent_ids: Iterable[str] | None = None) -> Usage:
        """What ``agent_ids`` (default: every agent of the session) spent so far."""
        ids = self._spent.keys() if agent_ids is None else agent_ids
        total = Usage()
        for agent_id in ids:
            total += self._spent.get(agent_id, Usage())
        return total

    def team_spent(self, team_id: str) -> Usage:
        """What the agents of ``team_id`` and of its sub-teams (at any depth) spent so far."""
        return self.spent(a for a, t in self._team_of.items() if self._within(t, team_id))

    def _within(self, team_id: str | None, ancestor: str) -> bool:
        seen: set[str] = set()
        while team_id is not None and team_id not in seen:
            if team_id == ancestor:
                return True
            seen.add(team_id)
            team_id = self._parent_of.get(team_id)
        return False

    def _chain(self, team_id: str) -> list[str]:
        """``team_id`` and the teams above it, nearest first."""
        chain: list[str] = []
        current: str | None = team_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self._parent_of.get(current)
        return chain

    def breach(self, agent_id: str) -> Breach | None:
        """The budget ``agent_id``'s next model call would break, or ``None``.

        The team budget holds for the agent's team and for every team above it, each with
        its sub-teams' spend included.
        """
        team_id = self._team_of.get(agent_id, "")
        for team in self._chain(team_id) or [team_id]:
            found = budget_breach(
                self.limits,
                agent=self.spent([agent_id]),
                team=self.team_spent(team),
                session=self.spent(),
            )
            if found is not None:
                return found
        return None

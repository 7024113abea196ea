"""``loomkin cost``: what a session spent, by agent and by team, read off its log.

Spend is summed from the ``ModelCallCompleted`` events (tokens and cost of each call, priced
when the call was made), the summarising calls of ``ContextCompacted`` and the judge's calls
on a speculation's prose assumptions (``SpeculationJudged``, charged to the speculating
agent, each one model call), so a finished
session, one open elsewhere and one open here all read the same. A team's spend is its own
agents' (as its budget counts it, SPEC §3.12). Input is split three ways: read from a prompt
cache, written to one, and neither (uncached); ``input_tokens`` is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import (
    AgentSpawned,
    ContextCompacted,
    ModelCallCompleted,
    SpeculationJudged,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from loomkin.core.events import RecordedEvent

__all__ = ["AgentSpend", "Spend", "TeamSpend", "spend_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpend:
    """What one agent spent."""

    agent_id: str
    name: str
    role: str
    team_id: str
    team_name: str
    model: str
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached_input_tokens: int = 0
    """Input read from a prompt cache."""
    cache_write_tokens: int = 0
    """Input written to a prompt cache."""
    uncached_input_tokens: int = 0
    """Input neither read from nor written to a cache."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamSpend:
    """What the agents of one team spent together."""

    team_id: str
    name: str
    agents: int
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached_input_tokens: int = 0
    """Input read from a prompt cache."""
    cache_write_tokens: int = 0
    """Input written to a prompt cache."""
    uncached_input_tokens: int = 0
    """Input neither read from nor written to a cache."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """What a session spent: by agent (spawn order), by team (first spawn order), in all."""

    session_id: str
    agents: tuple[AgentSpend, ...]
    teams: tuple[TeamSpend, ...]
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cached_input_tokens: int = 0
    """Input read from a prompt cache."""
    cache_write_tokens: int = 0
    """Input written to a prompt cache."""
    uncached_input_tokens: int = 0
    """Input neither read from nor written to a cache."""


@dataclass(slots=True)
class _Tally:
    spawned: AgentSpawned
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached: int = 0
    written: int = 0


def spend_of(session_id: str, events: Iterable[RecordedEvent], team_names: dict[str, str]) -> Spend:
    """Sum the spend of ``session_id`` from its events (``team_names``: team id → name)."""
    tallies: dict[str, _Tally] = {}
    for recorded in events:
        event = recorded.event
        if event.session_id != session_id:
            continue
        if isinstance(event, AgentSpawned):
            tallies.setdefault(event.agent_id, _Tally(event))
        elif isinstance(event, ModelCallCompleted) and event.agent_id in tallies:
            tally = tallies[event.agent_id]
            tally.calls += 1
            tally.input_tokens += event.input_tokens
            tally.output_tokens += event.output_tokens
            tally.cost_usd += event.cost_usd
            tally.cached += event.cached_input_tokens
            tally.written += event.cache_write_tokens
        elif isinstance(event, SpeculationJudged) and event.agent_id in tallies:
            tally = tallies[event.agent_id]  # the judge's call on its speculation
            tally.calls += 1
            tally.input_tokens += event.input_tokens
            tally.output_tokens += event.output_tokens
            tally.cost_usd += event.cost_usd
        elif isinstance(event, ContextCompacted) and event.agent_id in tallies:
            tally = tallies[event.agent_id]  # the summarising call (no cache figures)
            tally.input_tokens += event.input_tokens
            tally.output_tokens += event.output_tokens
            tally.cost_usd += event.cost_usd
    agents = tuple(
        AgentSpend(
            agent_id=agent_id,
            name=t.spawned.name,
            role=t.spawned.role,
            team_id=t.spawned.team_id,
            team_name=team_names.get(t.spawned.team_id, t.spawned.team_id),
            model=t.spawned.model,
            model_calls=t.calls,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
            cost_usd=t.cost_usd,
            cached_input_tokens=t.cached,
            cache_write_tokens=t.written,
            uncached_input_tokens=t.input_tokens - t.cached - t.written,
        )
        for agent_id, t in tallies.items()
    )
    by_team: dict[str, list[AgentSpend]] = {}
    for agent in agents:
        by_team.setdefault(agent.team_id, []).append(agent)
    teams = tuple(
        TeamSpend(
            team_id=team_id,
            name=members[0].team_name,
            agents=len(members),
            model_calls=sum(a.model_calls for a in members),
            input_tokens=sum(a.input_tokens for a in members),
            output_tokens=sum(a.output_tokens for a in members),
            cost_usd=sum(a.cost_usd for a in members),
            **_cache_sums(members),
        )
        for team_id, members in by_team.items()
    )
    return Spend(
        session_id=session_id,
        agents=agents,
        teams=teams,
        model_calls=sum(a.model_calls for a in agents),
        input_tokens=sum(a.input_tokens for a in agents),
        output_tokens=sum(a.output_tokens for a in agents),
        cost_usd=sum(a.cost_usd for a in agents),
        **_cache_sums(agents),
    )


def _cache_sums(agents: Iterable[AgentSpend]) -> dict[str, int]:
    listed = list(agents)
    return {
        "cached_input_tokens": sum(a.cached_input_tokens for a in listed),
        "cache_write_tokens": sum(a.cache_write_tokens for a in listed),
        "uncached_input_tokens": sum(a.uncached_input_tokens for a in listed),
    }

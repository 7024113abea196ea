"""Coordination facts: region claims, conflicts, rebalancing, votes, insights, routed questions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import JSON, Event, register
from loomkin.ids import AgentId, DecisionId, QuestionId, TaskId, TeamId

__all__ = [
    "ConflictDetected",
    "ConflictType",
    "InsightShared",
    "QuestionRouted",
    "RebalancerActed",
    "RegionClaimed",
    "VoteCast",
    "VoteProposed",
    "VoteResolved",
]

ConflictType = Literal["file", "region", "stale_write", "approach", "decision"]
Quorum = Literal["majority", "supermajority", "unanimous"]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RegionClaimed(Event):
    """An agent announced it is about to change lines ``start_line``–``end_line`` of ``path``.

    A claim lasts until the claimer's current task ends or it claims the path again.
    ``end_line == 0`` claims the whole file.
    """

    kind: Literal["region_claimed"] = "region_claimed"
    agent_id: AgentId
    agent_name: str
    team_id: TeamId
    path: str
    """Path relative to the project root."""
    start_line: int = 1
    end_line: int = 0
    task_id: TaskId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class ConflictDetected(Event):
    """The conflict detector found two agents working against each other."""

    kind: Literal["conflict_detected"] = "conflict_detected"
    conflict_id: str
    conflict_type: ConflictType
    team_id: TeamId
    agents: tuple[str, ...]
    """Ids of the agents involved (the one acting first)."""
    description: str
    path: str | None = None
    blocked: bool = False
    """True when the detector refused a write before it landed (stale-read guard)."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class RebalancerActed(Event):
    """The rebalancer acted on a stuck or looping agent (graded: nudge, reassign, escalate)."""

    kind: Literal["rebalancer_acted"] = "rebalancer_acted"
    agent_id: AgentId
    problem: Literal["stuck", "loop", "ping_pong"]
    action: Literal["nudge", "reassign", "escalate"]
    detail: str
    strike: int
    """How many times the rebalancer acted on this agent since its last real progress."""
    task_id: TaskId | None = None
    reassigned_to: AgentId | None = None
    escalated_to: str | None = None
    """``lead``, ``concierge`` or ``user`` for an escalation."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class VoteProposed(Event):
    """A collective decision was opened: voters, options, quorum and deadline."""

    kind: Literal["vote_proposed"] = "vote_proposed"
    vote_id: str
    team_id: TeamId
    proposer: AgentId
    topic: str
    options: tuple[str, ...]
    voters: tuple[str, ...]
    """Ids of the agents asked to vote."""
    scope: str = "general"
    quorum: Quorum = "majority"
    deadline: float = 0.0
    """Clock time (unix seconds) at which the vote closes with the votes cast so far."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class VoteCast(Event):
    """One agent voted, with its confidence, rationale and resulting weight."""

    kind: Literal["vote_cast"] = "vote_cast"
    vote_id: str
    voter: AgentId
    voter_name: str
    option: str
    confidence: float
    rationale: str
    weight: float


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class VoteResolved(Event):
    """A vote closed: the weighted winner, or no quorum."""

    kind: Literal["vote_resolved"] = "vote_resolved"
    vote_id: str
    outcome: Literal["decided", "no_quorum"]
    winner: str | None
    weights: dict[str, JSON]
    """Option → summed weight."""
    counts: dict[str, JSON]
    """Option → number of votes."""
    winning_pct: float
    reason: str
    decision_id: DecisionId | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class InsightShared(Event):
    """A finding was recorded in the team's knowledge and sent to the agents it concerns."""

    kind: Literal["insight_shared"] = "insight_shared"
    insight_id: str
    team_id: TeamId
    author: AgentId
    author_name: str
    insight_type: str
    text: str
    files: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    """Ids of the agents the relevance scorer selected."""
    scores: dict[str, JSON] | None = None
    """Agent name → relevance score, for every candidate considered."""
    propagated_to: tuple[str, ...] = ()
    """Ancestor team ids whose knowledge also holds the finding."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionRouted(Event):
    """A question was routed to the agent most likely to know (by relevance)."""

    kind: Literal["question_routed"] = "question_routed"
    question_id: QuestionId
    to_agent: AgentId
    hop: int
    """1 for the first recipient; each pass adds one."""
    score: float
    reason: str

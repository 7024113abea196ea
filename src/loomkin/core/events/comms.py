"""Messages between agents and teams, questions, decisions and knowledge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loomkin.core.events.base import JSON, Event, register
from loomkin.core.messages import MessageType
from loomkin.core.records import Tier
from loomkin.ids import AgentId, DecisionId, MessageId, QuestionId, TeamId

__all__ = [
    "DecisionLogged",
    "MessageSent",
    "QuestionAnswered",
    "QuestionAsked",
    "QuestionExpired",
    "QuestionForwarded",
]


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(Event):
    """A message was sent to an agent, a team or a topic.

    ``msg_type`` is the message's type (:data:`~loomkin.core.messages.MessageType`); its tier
    is derived from it (:func:`~loomkin.core.messages.tier_of`) and recorded here for the feed.
    A log written by an older version may hold a type no longer declared: it still decodes,
    and it is delivered as ``normal``.
    """

    kind: Literal["message_sent"] = "message_sent"
    message_id: MessageId
    msg_type: MessageType
    tier: Tier
    content: str
    """Readable text, as the recipient's model will see it."""
    from_agent: AgentId | None = None
    from_name: str = "system"
    from_team: TeamId | None = None
    to_agent: AgentId | None = None
    to_team: TeamId | None = None
    topic: str | None = None
    data: dict[str, JSON] | None = None


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionAsked(Event):
    """An agent asked a question, of one agent, a team or the user, with a deadline."""

    kind: Literal["question_asked"] = "question_asked"
    question_id: QuestionId
    asker: AgentId
    asker_team: TeamId
    question: str
    to_agent: AgentId | None = None
    to_team: TeamId | None = None
    deadline: float = 0.0
    """Unix seconds after which an unanswered question expires."""
    hops: tuple[str, ...] = ()
    to_user: bool = False
    """Asked of the person running the session (no agent or team): the user answers it
    (``Session.answer_question``, the HTTP API, a prompt), or it expires at the deadline."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionAnswered(Event):
    """A question got its answer; it is routed back to the asker."""

    kind: Literal["question_answered"] = "question_answered"
    question_id: QuestionId
    answerer: AgentId | None
    """The agent who answered; ``None`` when the user answered a question asked of them."""
    answer: str


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionExpired(Event):
    """A question reached its deadline unanswered; the asker is told."""

    kind: Literal["question_expired"] = "question_expired"
    question_id: QuestionId


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionForwarded(Event):
    """An addressee passed an open question on to another agent or team.

    The question keeps its id and deadline; the answer still goes back to the asker.
    """

    kind: Literal["question_forwarded"] = "question_forwarded"
    question_id: QuestionId
    forwarded_by: AgentId
    to_agent: AgentId | None = None
    to_team: TeamId | None = None
    note: str = ""
    """What the forwarder adds for the new addressee."""
    hops: tuple[str, ...] = ()
    """Every forwarder so far (``team/name``), this one last."""


@register
@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionLogged(Event):
    """A node was added to the decision graph (goal, option, decision, outcome, ...)."""

    kind: Literal["decision_logged"] = "decision_logged"
    decision_id: DecisionId
    team_id: TeamId
    node_type: Literal["goal", "decision", "option", "action", "outcome", "observation"]
    title: str
    description: str = ""
    agent_id: AgentId | None = None
    parent_id: DecisionId | None = None
    confidence: int | None = None
    metadata: dict[str, JSON] | None = None

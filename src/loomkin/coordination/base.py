"""What every coordination service needs: the log, the clock, timers, and a view of the agents.

Coordination sits below the agent layer, so it never sees an ``Agent``: the session hands it a
:class:`Roster` (plain :class:`Member` records) and the services talk to agents only through
events: a ``MessageSent`` appended to the log is delivered by the session once committed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.core.events import MessageSent
from loomkin.core.messages import MessageType, tier_of
from loomkin.core.state import State
from loomkin.ids import AgentId, MessageId, SessionId, TaskId, TeamId, new_id
from loomkin.runtime.clock import Clock
from loomkin.runtime.eventlog import EventLog
from loomkin.runtime.supervisor import Supervisor
from loomkin.tasks.service import TaskService

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events.base import JSON

__all__ = [
    "COORDINATION_ROLES",
    "Context",
    "Member",
    "MessageFactory",
    "Roster",
    "Sender",
    "file_paths",
    "significant_words",
]

COORDINATION_ROLES: frozenset[str] = frozenset({"concierge", "orienter", "lead"})
"""Roles that coordinate rather than take tasks (never reassigned work, never nudged)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """One agent as the coordination services see it."""

    agent_id: AgentId
    name: str
    role: str
    team_id: TeamId
    status: str
    """The agent's status (``idle``, ``thinking``, ``executing_tool`` ...)."""
    task_id: TaskId | None = None
    capability: float = 0.5
    """Success rate on finished tasks, 0–1 (0.5 without history)."""
    cost_usd: float = 0.0
    """What the agent's model calls cost so far."""


class Sender(Protocol):
    """Who a message is from, as the recipient is shown it (a :class:`Member` or an agent)."""

    @property
    def agent_id(self) -> AgentId: ...

    @property
    def name(self) -> str: ...

    @property
    def team_id(self) -> TeamId: ...


class Roster(Protocol):
    """The agents of one session (implemented by the session runtime)."""

    def members(self) -> Sequence[Member]:
        """Every agent of the session, in spawn order."""
        ...

    def member_by_id(self, agent_id: str) -> Member | None:
        """The agent ``agent_id`` (None when the session has no such agent)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFactory:
    """Builds the ``MessageSent`` events of one session (delivered once committed)."""

    session_id: SessionId

    def message(
        self,
        msg_type: MessageType,
        content: str,
        *,
        to_agent: AgentId | None = None,
        to_team: TeamId | None = None,
        topic: str | None = None,
        from_name: str = "system",
        sender: Sender | None = None,
        data: dict[str, JSON] | None = None,
    ) -> MessageSent:
        """Build a message to one agent, one team or one topic (delivered once committed).

        Args:
            msg_type: The message type (it decides the priority tier).
            content: Readable text, as the recipient's model will see it.
            to_agent: The recipient agent.
            to_team: The recipient team (every agent of it), when ``to_agent`` is None.
            topic: The bus topic whose subscribers receive it, when neither is given.
            from_name: Who the message is from when no ``sender`` is given.
            sender: The agent sending it (its name and team are shown to the recipient).
            data: JSON values for the UI and the tools.
        """
        return MessageSent(
            session_id=self.session_id,
            message_id=MessageId(new_id("msg_")),
            msg_type=msg_type,
            tier=tier_of(msg_type),
            content=content,
            from_agent=sender.agent_id if sender else None,
            from_name=sender.name if sender else from_name,
            from_team=sender.team_id if sender else None,
            to_agent=to_agent,
            to_team=None if to_agent is not None else to_team,
            topic=topic if to_agent is None and to_team is None else None,
            data=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Shared dependencies of the coordination services of one session."""

    session_id: SessionId
    log: EventLog
    clock: Clock
    timers: Supervisor
    tasks: TaskService
    state: State
    roster: Roster
    messages: MessageFactory

    def member(self, agent_id: str | None) -> Member | None:
        """Return the member ``agent_id``, if it exists."""
        return None if agent_id is None else self.roster.member_by_id(agent_id)

    def task_text(self, task_id: str | None) -> str:
        """Title and description of ``task_id`` ("" when there is none)."""
        if task_id is None:
            return ""
        view = self.tasks.board.get(TaskId(task_id))
        return "" if view is None else f"{view.title}\n{view.description}"

    def escalation_chain(self, team_id: TeamId) -> list[Member]:
        """The team's lead, then the Concierge (who speaks to the user)."""
        members = self.roster.members()
        chain = [m for m in members if m.role == "lead" and m.team_id == team_id]
        chain += [m for m in members if m.role == "concierge"][:1]
        return chain


_STOP_WORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "that",
        "this",
        "from",
        "into",
        "have",
        "has",
        "was",
        "were",
        "are",
        "not",
        "but",
        "you",
        "your",
        "our",
        "its",
        "will",
        "can",
        "should",
        "would",
        "could",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "how",
        "does",
        "did",
        "use",
        "using",
        "all",
        "any",
        "out",
        "about",
        "then",
        "than",
        "them",
        "they",
        "their",
        "there",
        "here",
        "also",
        "just",
        "only",
        "some",
        "more",
        "most",
    ]
)
_WORD = re.compile(r"[a-z0-9_]+")
_PATH = re.compile(
    r"(?:[\w.-]+/)*[\w-]+\.(?:py|pyi|ex|exs|js|ts|tsx|jsx|go|rs|java|rb|c|h|cpp|"
    r"toml|ya?ml|json|md|sql|html|css|sh|txt|cfg|ini)\b"
)


def significant_words(text: str) -> frozenset[str]:
    """Lower-cased words of 3+ characters, without stop-words (notes §9, §13)."""
    return frozenset(w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOP_WORDS)


def file_paths(text: str) -> frozenset[str]:
    """File paths mentioned in ``text`` (anything with a known source-file extension)."""
    return frozenset(m.group(0).lstrip("./") for m in _PATH.finditer(text))

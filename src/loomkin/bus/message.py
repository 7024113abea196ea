"""The message that travels on the bus: a serialisable value, never an object reference."""

from __future__ import annotations

from dataclasses import dataclass

from loomkin.core.events.base import JSON
from loomkin.core.messages import MessageType, tier_of
from loomkin.core.records import Tier
from loomkin.ids import new_id

__all__ = ["BusMessage", "new_message"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BusMessage:
    """One message between agents, teams or the system.

    Every field is a JSON value, so a networked bus (NATS) can carry it unchanged.
    """

    message_id: str
    """Time-ordered unique id (``msg_…``)."""
    msg_type: str
    """What the message is (``peer_message``, ``task_assigned``, ``abort``, …)."""
    tier: Tier
    """Priority tier, normally ``tier_of(msg_type)``."""
    content: str
    """Readable text, as a model will see it (never a raw object dump)."""
    from_agent: str | None
    """Sending agent id, or ``None`` for the user or the system."""
    from_name: str
    """Sender's display name (``"user"``, ``"system"``, an agent's name)."""
    from_team: str | None
    """Sending agent's team id, when it has one."""
    to_agent: str | None
    """Recipient agent id for a direct message."""
    to_team: str | None
    """Recipient team id for a team broadcast."""
    topic: str | None
    """Topic it was published on, when not implied by ``to_agent``/``to_team``."""
    data: dict[str, JSON] | None
    """Structured payload (ids, numbers) for code; the model reads ``content``."""
    sent_at: float
    """Unix seconds from the sender's clock."""


def new_message(
    *,
    msg_type: MessageType,
    content: str,
    from_name: str,
    sent_at: float,
    from_agent: str | None = None,
    from_team: str | None = None,
    to_agent: str | None = None,
    to_team: str | None = None,
    topic: str | None = None,
    data: dict[str, JSON] | None = None,
) -> BusMessage:
    """Return a :class:`BusMessage` with a fresh id and the tier of its ``msg_type``."""
    return BusMessage(
        message_id=new_id("msg_"),
        msg_type=msg_type,
        tier=tier_of(msg_type),
        content=content,
        from_agent=from_agent,
        from_name=from_name,
        from_team=from_team,
        to_agent=to_agent,
        to_team=to_team,
        topic=topic,
        data=data,
        sent_at=sent_at,
    )

"""Topic publish/subscribe between agents, in one process.

``publish`` is synchronous and never awaits a recipient: it hands the message to each
subscriber's non-blocking ``deliver`` (a bounded mailbox) and returns. Two agents messaging
each other can therefore never deadlock, and a slow agent can only fill its own mailbox.
Each topic keeps an immutable tuple of its subscribers (copy on subscribe/unsubscribe), so a
publish costs O(subscribers of that topic) whatever the number of other topics, and a
subscriber may unsubscribe while a message is being delivered. Only the :class:`BusMessage`
value crosses the bus, so a networked bus (NATS) can replace this one without changing callers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.bus.message import BusMessage

__all__ = ["Bus", "BusStatistics", "Subscriber", "agent_topic", "session_topic", "team_topic"]

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    """Something that accepts messages without blocking (normally a mailbox)."""

    def deliver(self, message: BusMessage) -> None:
        """Accept ``message`` or drop it by the subscriber's own overflow policy; never block."""
        ...


def agent_topic(agent_id: str) -> str:
    """Return the topic of direct messages to one agent."""
    return f"agent:{agent_id}"


def team_topic(team_id: str) -> str:
    """Return the topic of broadcasts to one team."""
    return f"team:{team_id}"


def session_topic(session_id: str) -> str:
    """Return the topic of broadcasts to a whole session."""
    return f"session:{session_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStatistics:
    """Counters of a :class:`Bus`."""

    topics: int
    """Topics with at least one subscriber."""
    subscriptions: int
    published: int
    delivered: int
    unrouted: int
    """Messages published on a topic nobody subscribed to."""
    deliver_errors: int
    """Times a subscriber's ``deliver`` raised (logged with its traceback)."""


class Bus:
    """In-process topic bus (see the module docstring)."""

    __slots__ = ("_deliver_errors", "_delivered", "_published", "_topics", "_unrouted")

    def __init__(self) -> None:
        self._topics: dict[str, tuple[Subscriber, ...]] = {}
        self._published = 0
        self._delivered = 0
        self._unrouted = 0
        self._deliver_errors = 0

    def subscribe(self, topic: str, subscriber: Subscriber) -> Callable[[], None]:
        """Deliver every message published on ``topic`` to ``subscriber``.

        Returns:
            A function that removes this subscription (calling it twice is harmless).
        """
        self._topics[topic] = (*self._topics.get(topic, ()), subscriber)
        removed = False

        def unsubscribe() -> None:
            nonlocal removed
            if removed:
                return
            removed = True
            subs = list(self._topics.get(topic, ()))
            for i, sub in enumerate(subs):
                if sub is subscriber:
                    del subs[i]
                    break
            if subs:
                self._topics[topic] = tuple(subs)
            else:
                self._topics.pop(topic, None)

        return unsubscribe

    def publish(self, topic: str, message: BusMessage) -> int:
        """Hand ``message`` to every subscriber of ``topic`` without waiting for any.

        Returns:
            The number of subscribers it was delivered to.
        """
        self._published += 1
        subs = self._topics.get(topic)
        if not subs:
            self._unrouted += 1
            return 0
        n = 0
        for sub in subs:
            try:
                sub.deliver(message)
            except Exception:
                self._deliver_errors += 1
                logger.exception("subscriber %r of topic %r failed to accept a message", sub, topic)
            else:
                n += 1
        self._delivered += n
        return n

    def subscribers(self, topic: str) -> int:
        """Return how many subscribers ``topic`` has."""
        return len(self._topics.get(topic, ()))

    def statistics(self) -> BusStatistics:
        """Return the bus's counters."""
        return BusStatistics(
            topics=len(self._topics),
            subscriptions=sum(len(s) for s in self._topics.values()),
            published=self._published,
            delivered=self._delivered,
            unrouted=self._unrouted,
            deliver_errors=self._deliver_errors,
        )

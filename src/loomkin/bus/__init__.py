"""Topic pub/sub between agents: serialisable messages, priorities, non-blocking fan-out."""

from loomkin.bus.bus import Bus, BusStatistics, Subscriber, agent_topic, session_topic, team_topic
from loomkin.bus.message import BusMessage, new_message
from loomkin.bus.priority import (
    HIGH_TYPES,
    IGNORE_TYPES,
    NORMAL_TYPES,
    TIER_RANK,
    URGENT_TYPES,
    classify,
)

__all__ = [
    "HIGH_TYPES",
    "IGNORE_TYPES",
    "NORMAL_TYPES",
    "TIER_RANK",
    "URGENT_TYPES",
    "Bus",
    "BusMessage",
    "BusStatistics",
    "Subscriber",
    "agent_topic",
    "classify",
    "new_message",
    "session_topic",
    "team_topic",
]

"""Topic pub/sub between agents: serialisable messages, priorities, non-blocking fan-out."""

from loomkin.bus.bus import Bus, BusStatistics, Subscriber, agent_topic, session_topic, team_topic
from loomkin.bus.message import BusMessage, new_message
from loomkin.bus.priority import TIER_RANK, classify

__all__ = [
    "TIER_RANK",
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

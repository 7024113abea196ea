"""Generic actor runtime: event log, mailboxes, supervision, registry, teams (no LLM here)."""

from loomkin.runtime.clock import Clock, LoopClock
from loomkin.runtime.eventlog import (
    EventLog,
    EventLogStatistics,
    Subscription,
    SubscriptionStatistics,
)
from loomkin.runtime.mailbox import CONTROL_CAPACITY, Mailbox, MailboxStatistics, Tiered
from loomkin.runtime.registry import Registry
from loomkin.runtime.supervisor import Supervisor, SupervisorStatistics
from loomkin.runtime.teams import TeamManager

__all__ = [
    "CONTROL_CAPACITY",
    "Clock",
    "EventLog",
    "EventLogStatistics",
    "LoopClock",
    "Mailbox",
    "MailboxStatistics",
    "Registry",
    "Subscription",
    "SubscriptionStatistics",
    "Supervisor",
    "SupervisorStatistics",
    "TeamManager",
    "Tiered",
]

"""Message priority tiers (SPEC §3.4): which tier each message type travels in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loomkin.core.records import Tier

__all__ = ["HIGH_TYPES", "IGNORE_TYPES", "NORMAL_TYPES", "TIER_RANK", "URGENT_TYPES", "classify"]

URGENT_TYPES: frozenset[str] = frozenset(
    {"abort", "budget_exceeded", "file_conflict", "user_steer", "user_cancel"}
)
"""Interrupt the recipient at its next checkpoint."""
HIGH_TYPES: frozenset[str] = frozenset(
    {
        "task_assigned",
        "tasks_unblocked",
        "milestone_reached",
        "review_request",
        "review_response",
        "conflict_detected",
        "vote_request",
        "vote_result",
        "rendezvous_completed",
        "rendezvous_timed_out",
        "negotiation_offer",
    }
)
"""Delivered before normal messages, between loop steps or waking an idle agent."""
NORMAL_TYPES: frozenset[str] = frozenset({"peer_message", "question", "answer", "insight"})
"""Ordinary traffic; unknown message types are normal too."""
IGNORE_TYPES: frozenset[str] = frozenset({"agent_status", "role_changed", "status_update"})
"""Status chatter: dropped by mailboxes, never shown to a model."""

TIER_RANK: dict[Tier, int] = {"urgent": 0, "high": 1, "normal": 2, "ignore": 3}
"""Lower rank is more important."""

_TIERS: dict[str, Tier] = {
    **dict.fromkeys(URGENT_TYPES, "urgent"),
    **dict.fromkeys(HIGH_TYPES, "high"),
    **dict.fromkeys(NORMAL_TYPES, "normal"),
    **dict.fromkeys(IGNORE_TYPES, "ignore"),
}


def classify(msg_type: str) -> Tier:
    """Return the priority tier of ``msg_type`` (unknown types are ``"normal"``)."""
    return _TIERS.get(msg_type, "normal")

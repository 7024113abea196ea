"""The message vocabulary: every type a message can have, and the tier each travels in.

How this works and why:

* :data:`MessageType` is a closed ``Literal``: a message of a type nobody declared cannot be
  built (mypy refuses it), and every declared type is sent by some producer. Adding a type
  means adding it here and deciding its tier in :func:`tier_of`, whose ``match`` ends in
  ``assert_never`` so a type without a tier is a type error, not a silent "normal".
* Tiers (SPEC §3.4): ``urgent`` interrupts the recipient at its next checkpoint; ``high`` is
  delivered before ``normal`` between loop steps or wakes an idle agent; ``ignore`` never
  reaches a model. The control lane (pause, resume, steer, cancel) sits above all four and is
  not a message type.
* Old logs may hold types this version no longer declares; :func:`tier_of_name` reads them
  as ``normal`` (a message from the past is still delivered, never lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeGuard, assert_never, get_args

if TYPE_CHECKING:
    from loomkin.core.records import Tier

__all__ = [
    "MESSAGE_TYPES",
    "TIER_RANK",
    "MessageType",
    "is_message_type",
    "tier_of",
    "tier_of_name",
]

MessageType = Literal[
    # urgent: interrupt at the next checkpoint
    "abort",
    "budget_exceeded",
    "file_conflict",
    # high: task flow and coordination that someone waits on
    "task_assigned",
    "task_completed",
    "task_failed",
    "partial_output",
    "conflict_detected",
    "vote_request",
    "vote_result",
    "negotiation_offer",
    "negotiation_result",
    "review_request",
    "ready_notice",
    "rendezvous",
    "orient",
    "onboarding",
    # normal: conversation
    "user_message",
    "peer_message",
    "question",
    "answer",
    "insight",
    "nudge",
    "escalation",
]
"""Every type of message an agent can receive."""

MESSAGE_TYPES: tuple[MessageType, ...] = get_args(MessageType)

TIER_RANK: dict[Tier, int] = {"urgent": 0, "high": 1, "normal": 2, "ignore": 3}
"""Lower rank is more important."""


def tier_of(msg_type: MessageType) -> Tier:
    """The priority tier ``msg_type`` travels in."""
    match msg_type:
        case "abort" | "budget_exceeded" | "file_conflict":
            return "urgent"
        case "task_assigned" | "task_completed" | "task_failed" | "partial_output":
            # Task flow is what unblocks work: a dependent waits on a completion or a chunk.
            return "high"
        case "conflict_detected" | "vote_request" | "vote_result":
            return "high"
        case "negotiation_offer" | "negotiation_result" | "review_request":
            # An assigner decides within a window, and an assignee waits on the outcome.
            return "high"
        case "ready_notice" | "rendezvous":
            # Someone waits on a readiness signal or a barrier: it must not queue behind chat.
            return "high"
        case "onboarding":
            # A new agent's brief (the autoscaler's): it reads it before taking work.
            return "high"
        case "orient":
            # The Orienter's own start signal: nothing else waits in its mailbox then, but it
            # must not queue behind chatter either.
            return "high"
        case "user_message" | "peer_message" | "question" | "answer" | "insight":
            return "normal"
        case "nudge" | "escalation":
            # The rebalancer's and the vote book's notices: read between steps like a peer's.
            return "normal"
        case _:
            assert_never(msg_type)


def is_message_type(name: str) -> TypeGuard[MessageType]:
    """Whether ``name`` is a declared :data:`MessageType`."""
    return name in _DECLARED


def tier_of_name(name: str) -> Tier:
    """The tier of a type read back from a log; undeclared (older) types are ``normal``."""
    return tier_of(name) if is_message_type(name) else "normal"


_DECLARED: frozenset[str] = frozenset(MESSAGE_TYPES)

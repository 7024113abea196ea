"""Domain vocabulary shared by every layer: statuses, kinds and tiers as ``Literal`` types."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "AGENT_STATUSES",
    "TASK_STATUSES",
    "AgentStatus",
    "ControlAction",
    "DepKind",
    "PauseMode",
    "PermissionDecision",
    "TaskStatus",
    "Tier",
    "ToolCategory",
]

AgentStatus = Literal[
    "idle",
    "thinking",
    "executing_tool",
    "waiting_permission",
    "paused",
    "blocked",
    "done",
    "crashed",
]
AGENT_STATUSES: tuple[AgentStatus, ...] = get_args(AgentStatus)

TaskStatus = Literal[
    "pending",
    "assigned",
    "in_progress",
    "paused",
    "blocked",
    "partially_complete",
    "ready_for_review",
    "completed",
    "failed",
    "cancelled",
    "pending_speculative",
    "completed_tentative",
    "discarded_tentative",
]
TASK_STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)

DepKind = Literal["blocks", "informs", "requires_output"]
"""``blocks`` waits for completion; ``informs`` never waits; ``requires_output`` waits for
completion or a partial result and injects the predecessor's output."""

Tier = Literal["urgent", "high", "normal", "ignore"]
"""Message priority tiers (SPEC §3.4); the control lane sits above all four."""

ControlAction = Literal["pause", "resume", "steer", "cancel", "inspect"]
PauseMode = Literal["asap", "at_boundary"]
PermissionDecision = Literal["allow_once", "allow_always", "deny"]
ToolCategory = Literal["read", "write", "execute", "coordination"]

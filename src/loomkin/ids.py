"""Typed, time-ordered identifiers.

Ids are UUIDv7 strings (RFC 9562): 48 bits of Unix milliseconds then random bits, so they
sort by creation time in the store and in logs. Within one process ids made in the same
millisecond still sort in creation order (a counter fills the ``rand_a`` field).
"""

from __future__ import annotations

import os
import threading
import time
from typing import NewType

__all__ = [
    "AgentId",
    "CallId",
    "DecisionId",
    "EventId",
    "MessageId",
    "QuestionId",
    "RequestId",
    "SessionId",
    "TaskId",
    "TeamId",
    "new_id",
    "uuid7",
]

SessionId = NewType("SessionId", str)
TeamId = NewType("TeamId", str)
AgentId = NewType("AgentId", str)
TaskId = NewType("TaskId", str)
EventId = NewType("EventId", str)
CallId = NewType("CallId", str)
"""Stable id of one model call or tool call; journaled so a resume never repeats it."""
MessageId = NewType("MessageId", str)
QuestionId = NewType("QuestionId", str)
DecisionId = NewType("DecisionId", str)
RequestId = NewType("RequestId", str)
"""Id of a permission prompt or a control request (pause, steer, ...)."""

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> str:
    """Return a new UUIDv7 as a lower-case hex string with dashes."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or an earlier, after a clock step) millisecond: keep order with the counter.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:
                ms += 1
                _counter = 0
        else:
            _counter = 0
        _last_ms = ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_id(prefix: str = "") -> str:
    """Return a fresh time-ordered id, optionally prefixed (``"task_"`` → ``"task_0190…"``)."""
    return f"{prefix}{uuid7()}"

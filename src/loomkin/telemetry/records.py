"""Span records: what :mod:`loomkin.telemetry.spans` builds and any tracing backend takes.

Ids are derived from the log, not drawn at random: the trace id is the session's UUID
(``session_<uuid>`` → that UUID's 128 bits) and a span id is a hash of the session and the
span's key. Exporting a session twice, or live and then again when it is over, yields the
same trace, and a user finds the trace of a session from its id alone.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "AttributeValue",
    "SpanEvent",
    "SpanKind",
    "SpanRecord",
    "SpanStatus",
    "span_id_for",
    "trace_id_for",
]

AttributeValue = str | bool | int | float | tuple[str, ...]
"""A span attribute value (OpenTelemetry allows these scalars and homogeneous arrays)."""
SpanKind = Literal["internal", "client"]
"""``client`` for a call to a model provider, ``internal`` for work in this process."""
SpanStatus = Literal["unset", "ok", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanEvent:
    """Something that happened during a span (a retry, a crash, a pause)."""

    name: str
    """``loomkin.retry``, ``loomkin.agent.crashed``, ..."""
    at_s: float
    """When it happened: the event's ``recorded_at`` (Unix seconds)."""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    """Details, e.g. the retry's attempt and error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanRecord:
    """One finished span, ready for any tracing backend."""

    key: str
    """Stable, readable identity: ``session:<id>``, ``team:<id>``, ``agent:<id>``,
    ``model_call:<agent id>:<call id>`` or ``tool_call:<agent id>:<call id>``."""
    parent_key: str | None
    """The parent span's key (``None`` for the session's span, the root)."""
    trace_id: int
    """128-bit trace id, the same for every span of a session (see :func:`trace_id_for`)."""
    span_id: int
    """64-bit span id, derived from ``key``."""
    parent_span_id: int | None
    """The parent's ``span_id``."""
    name: str
    """``chat <model>``, ``execute_tool <tool>``, ``invoke_agent <name>``, ``team <name>``,
    ``session <title>``."""
    kind: SpanKind
    start_s: float
    """Unix seconds (the opening event's ``recorded_at``)."""
    end_s: float
    """Unix seconds (the closing event's ``recorded_at``; never before ``start_s``)."""
    attributes: Mapping[str, AttributeValue]
    events: tuple[SpanEvent, ...] = ()
    status: SpanStatus = "unset"
    status_message: str = ""
    """Why the span failed (only with ``status="error"``)."""

    @property
    def trace_id_hex(self) -> str:
        """The trace id as tracing UIs show it (32 hex digits)."""
        return f"{self.trace_id:032x}"

    @property
    def span_id_hex(self) -> str:
        """The span id as tracing UIs show it (16 hex digits)."""
        return f"{self.span_id:016x}"


def trace_id_for(session_id: str) -> int:
    """Return the trace id of a session: its UUID's 128 bits, else a hash of the id.

    ``session_0190f3c2-…`` has trace id ``0190f3c2…``, so the trace of a session is found
    from the session's id alone.
    """
    tail = session_id.rpartition("_")[2]
    try:
        value = uuid.UUID(tail).int
    except ValueError:
        value = 0
    return value or _hash_id(f"trace:{session_id}", 16)


def _hash_id(text: str, size: int) -> int:
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big")
    return value or 1  # zero is the invalid id in OpenTelemetry


def span_id_for(session_id: str, key: str) -> int:
    """Return the span id of the span ``key`` (``agent:<id>`` …) of a session."""
    return _hash_id(f"{session_id}/{key}", 8)

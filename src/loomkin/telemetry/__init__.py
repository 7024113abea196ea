"""OpenTelemetry traces built from the event log (SPEC §3.17).

:func:`spans_from_events` and :class:`TraceBuilder` turn recorded events into span records
(session → team → agent → model call / tool call, GenAI semantic conventions) and need no
OpenTelemetry package; :func:`export_session` sends them to an OTLP/HTTP collector, an
OTLP/JSON file or any SDK exporter, and needs the ``otel`` extra
(``pip install 'loomkin[otel]'``).
"""

from loomkin.telemetry.export import OTEL_INSTALL_HINT, ExportSummary, export_session
from loomkin.telemetry.records import (
    AttributeValue,
    SpanEvent,
    SpanKind,
    SpanRecord,
    SpanStatus,
    span_id_for,
    trace_id_for,
)
from loomkin.telemetry.spans import TraceBuilder, spans_from_events

__all__ = [
    "OTEL_INSTALL_HINT",
    "AttributeValue",
    "ExportSummary",
    "SpanEvent",
    "SpanKind",
    "SpanRecord",
    "SpanStatus",
    "TraceBuilder",
    "export_session",
    "span_id_for",
    "spans_from_events",
    "trace_id_for",
]

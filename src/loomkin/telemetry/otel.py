"""From :class:`~loomkin.telemetry.records.SpanRecord` to OpenTelemetry SDK spans and exporters.

How this works and why:

* :class:`SdkSpans` replays each record through an SDK ``TracerProvider``: a span is
  started at the record's start time and ended at once at its end time, with its
  attributes, events and status, so exporters, span limits and the ``OTEL_TRACES_SAMPLER``
  setting apply as to any SDK span. The provider's id generator hands out the ids the
  record already carries (derived from the log, see :mod:`loomkin.telemetry.spans`), and
  a parent is given as a remote-free :class:`~opentelemetry.trace.SpanContext` built from
  the parent's id, so a child can end (and be exported) before its parent.
* The provider has no exporter of its own: a processor collects the ended spans and the
  caller hands them to the exporters in batches (:func:`~loomkin.telemetry.export_session`
  does it in a worker thread), so a long log is never dropped by a full SDK queue.
* :func:`otlp_exporter` is the SDK's OTLP/HTTP exporter, which reads the standard
  ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers, timeout, compression,
  certificates). :class:`OtlpJsonFileExporter` writes the same requests as OTLP/JSON
  lines, the format of the OpenTelemetry Collector's file exporter and
  ``otlpjsonfile`` receiver.
* The resource is ``service.name=loomkin`` with the package version, overridden by
  ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``.

This module imports the OpenTelemetry SDK (the ``otel`` extra).
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import logging
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from google.protobuf.json_format import MessageToDict
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from loomkin.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from loomkin.telemetry.records import SpanRecord

__all__ = [
    "OtlpJsonFileExporter",
    "SdkSpans",
    "default_resource",
    "export_batch",
    "otlp_exporter",
]

logger = logging.getLogger(__name__)

_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}
_STATUS = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}
_TRACES_PATH = "/v1/traces"


def _ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def default_resource() -> Resource:
    """``service.name=loomkin`` and its version, then whatever the ``OTEL_*`` variables say."""
    try:
        version = importlib.metadata.version("loomkin")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"  # running from a source tree that was never installed
    ours = Resource.create({"service.name": "loomkin", "service.version": version})
    return ours.merge(OTELResourceDetector().detect())


class _PlannedIds(IdGenerator):
    """Gives the tracer the ids the next span already has, instead of random ones."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Collect(SpanProcessor):
    """Keeps ended spans until :meth:`SdkSpans.convert` takes them."""

    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class SdkSpans:
    """Turns span records into SDK spans (:class:`~opentelemetry.sdk.trace.ReadableSpan`).

    Not thread-safe: the planned ids are set just before each span starts, so use one
    instance from one thread (the event loop's).

    Args:
        resource: The spans' resource (default: :func:`default_resource`).
    """

    def __init__(self, *, resource: Resource | None = None) -> None:
        self._ids = _PlannedIds()
        self._collect = _Collect()
        # shutdown_on_exit=False: the provider holds no exporter, nothing to flush at exit.
        self._provider = TracerProvider(
            resource=resource or default_resource(),
            id_generator=self._ids,
            shutdown_on_exit=False,
        )
        self._provider.add_span_processor(self._collect)
        self._tracer = self._provider.get_tracer("loomkin.telemetry")

    def convert(self, records: Iterable[SpanRecord]) -> list[ReadableSpan]:
        """Return the SDK spans of ``records`` (fewer if the sampler drops some)."""
        for record in records:
            self._replay(record)
        ended, self._collect.ended = self._collect.ended, []
        return ended

    def _replay(self, record: SpanRecord) -> None:
        self._ids.trace_id, self._ids.span_id = record.trace_id, record.span_id
        # An explicit empty context, never the caller's current one: a session's span is a
        # root even when the code exporting it runs inside a span of its own.
        parent = Context()
        if record.parent_span_id is not None:
            context = SpanContext(
                trace_id=record.trace_id,
                span_id=record.parent_span_id,
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
            parent = set_span_in_context(NonRecordingSpan(context), Context())
        span = self._tracer.start_span(
            record.name,
            context=parent,
            kind=_KINDS[record.kind],
            attributes=dict(record.attributes),
            start_time=_ns(record.start_s),
        )
        for event in record.events:
            span.add_event(event.name, dict(event.attributes), timestamp=_ns(event.at_s))
        if record.status != "unset":
            span.set_status(Status(_STATUS[record.status], record.status_message or None))
        span.end(end_time=_ns(record.end_s))

    def close(self) -> None:
        """Shut the provider down."""
        self._provider.shutdown()


def export_batch(exporters: Sequence[SpanExporter], spans: Sequence[ReadableSpan]) -> bool:
    """Hand ``spans`` to every exporter; True if all of them accepted the batch.

    Blocks on the exporters' I/O: call it from a worker thread in async code.
    """
    results = [exporter.export(spans) for exporter in exporters]
    return all(result is SpanExportResult.SUCCESS for result in results)


def otlp_exporter(endpoint: str | None = None) -> OTLPSpanExporter:
    """The SDK's OTLP/HTTP (protobuf) span exporter.

    Args:
        endpoint: The collector, e.g. ``http://localhost:4318`` (``/v1/traces`` is added
            when the URL has no path) or the full ``…/v1/traces`` URL. ``None``: the
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``
            variables, else ``http://localhost:4318``. Headers, timeout, compression and
            certificates always come from the ``OTEL_EXPORTER_OTLP_*`` variables.

    Raises:
        ConfigError: ``endpoint`` is not an http(s) URL.
    """
    if endpoint is None:
        return OTLPSpanExporter()
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"OTLP endpoint {endpoint!r} must be an http(s) URL, e.g. http://localhost:4318"
        )
    if parts.path in ("", "/"):
        parts = parts._replace(path=_TRACES_PATH)
    return OTLPSpanExporter(endpoint=urlunsplit(parts))


class OtlpJsonFileExporter(SpanExporter):
    """Writes spans to a file as OTLP/JSON, one ``ExportTraceServiceRequest`` per line.

    Ids are hex strings and enums numbers, as the OTLP/JSON encoding requires (plain
    protobuf JSON would write ids in base64).

    Args:
        path: The file; created or truncated.

    Raises:
        ConfigError: The file cannot be opened for writing.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._file: TextIO = path.open("w", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write spans to {str(path)!r}: {exc.strerror}") from None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        request: dict[str, Any] = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
        for resource_spans in request.get("resourceSpans", ()):
            for scope_spans in resource_spans.get("scopeSpans", ()):
                for span in scope_spans.get("spans", ()):
                    _hex_ids(span)
                    for link in span.get("links", ()):
                        _hex_ids(link)
        try:
            self._file.write(json.dumps(request, separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError:
            # The SpanExporter contract: report failure, do not raise into the SDK's caller.
            logger.exception("writing spans to %s failed", self._path)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def _hex_ids(item: dict[str, Any]) -> None:
    for name in ("traceId", "spanId", "parentSpanId"):
        value = item.get(name)
        if isinstance(value, str):
            item[name] = base64.b64decode(value).hex()

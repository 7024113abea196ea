"""Export a session's trace: ``loomkin trace export SESSION --otlp URL`` / ``--file PATH``.

How this works and why:

* One function, :func:`export_session`, for a finished session and a live one: it takes
  the session's recorded events as a list (``await store.read(session_id=...)``) or as an
  async iterator that yields them as they are appended (``session.events(after=0)``). A
  :class:`~loomkin.telemetry.spans.TraceBuilder` turns each event into the spans it
  closes; a span leaves as soon as its closing event is read, so a live export shows
  model and tool calls while the session still runs. It returns when the session's
  ``SessionEnded`` arrives or the events run out, ending what is still open.
* Spans go through a bounded queue to one exporting task, which converts them to SDK spans
  and calls the exporters in a worker thread (the OTLP exporter blocks on HTTP), taking
  everything queued so far as one batch: a long replay makes few, large requests, and the
  reader waits when the exporter falls behind instead of dropping spans.
* The OpenTelemetry SDK is the optional ``otel`` extra; without it, a
  :class:`~loomkin.errors.ConfigError` says what to install.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import ConfigError
from loomkin.telemetry.records import SpanRecord, trace_id_for
from loomkin.telemetry.spans import TraceBuilder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from opentelemetry.sdk.trace.export import SpanExporter

    from loomkin.core.events import RecordedEvent
    from loomkin.telemetry.otel import SdkSpans

__all__ = ["OTEL_INSTALL_HINT", "ExportSummary", "export_session"]

OTEL_INSTALL_HINT = "pip install 'loomkin[otel]'"
_BATCH = 512
"""Spans per export request at most (the SDK's batch processor uses the same size)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportSummary:
    """What :func:`export_session` sent."""

    session_id: str
    """The exported session (``""`` when there were no events)."""
    trace_id: str
    """The trace's id, 32 hex digits (the session's UUID)."""
    spans: int
    """Spans every destination accepted."""
    failed: int
    """Spans some destination refused or could not be reached for (the SDK logs why)."""
    unfinished: int
    """Spans that had no closing event (marked ``loomkin.unfinished``)."""
    destinations: tuple[str, ...]
    """Where the spans went: the OTLP URL, the file, or exporter class names."""


async def export_session(
    events: Iterable[RecordedEvent] | AsyncIterable[RecordedEvent],
    *,
    otlp_endpoint: str | None = None,
    file: Path | None = None,
    exporters: Sequence[SpanExporter] = (),
    session_id: str | None = None,
    include_content: bool = False,
) -> ExportSummary:
    """Export one session's events as OpenTelemetry spans (session → team → agent → call).

    Destinations: ``otlp_endpoint`` (OTLP/HTTP protobuf), ``file`` (OTLP/JSON lines),
    ``exporters`` (any SDK :class:`~opentelemetry.sdk.trace.export.SpanExporter`), in any
    combination. With none of them, the OTLP exporter is configured wholly by the standard
    ``OTEL_EXPORTER_OTLP_*`` variables (default ``http://localhost:4318``). Exporters given
    in ``exporters`` are shut down at the end, like the ones made here.

    Args:
        events: The session's recorded events in log order: a list for a finished session,
            an async iterator for a live one (read until ``SessionEnded`` or its end).
        otlp_endpoint: Collector URL, e.g. ``http://localhost:4318`` (``/v1/traces`` is
            added to a URL without a path).
        file: Write OTLP/JSON here (created or truncated).
        exporters: More exporters (tests pass the SDK's ``InMemorySpanExporter``).
        session_id: The session to export; default: that of the first event. Events of
            other sessions are skipped.
        include_content: Also export tool arguments, tool results and model answers
            (clipped); off by default, as they may hold secrets.

    Returns:
        What was sent, and how much failed.

    Raises:
        ConfigError: The ``otel`` extra is missing, the URL is not http(s), or the file
            cannot be written.
    """
    try:
        from loomkin.telemetry.otel import OtlpJsonFileExporter, SdkSpans, otlp_exporter
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(("opentelemetry", "google")):
            raise
        raise ConfigError(
            f"exporting traces needs OpenTelemetry, which is not installed: {OTEL_INSTALL_HINT}"
        ) from None
    sinks = [*exporters]
    names = [type(e).__name__ for e in exporters]
    # The URL is checked before the file is created, so a bad URL leaves no file behind.
    if otlp_endpoint is not None or (not sinks and file is None):
        sinks.append(otlp_exporter(otlp_endpoint))
        names.append(otlp_endpoint or "OTLP endpoint from OTEL_EXPORTER_OTLP_*")
    if file is not None:
        try:
            sinks.append(OtlpJsonFileExporter(file))
        except ConfigError:
            await asyncio.to_thread(_shutdown, sinks)
            raise
        names.append(str(file))
    run = _Run(SdkSpans(), sinks)
    try:
        session, unfinished = await run.feed(
            _events_of(events, session_id), include_content=include_content
        )
    finally:
        await asyncio.to_thread(run.shutdown)
    return ExportSummary(
        session_id=session,
        trace_id=f"{trace_id_for(session):032x}" if session else "",
        spans=run.exported,
        failed=run.failed,
        unfinished=unfinished,
        destinations=tuple(names),
    )


async def _events_of(
    events: Iterable[RecordedEvent] | AsyncIterable[RecordedEvent], session_id: str | None
) -> AsyncIterator[RecordedEvent]:
    """The events of one session, from a list or a live iterator alike."""
    wanted = session_id
    if isinstance(events, AsyncIterable):
        async for recorded in events:
            wanted = wanted or recorded.event.session_id
            if recorded.event.session_id == wanted:
                yield recorded
        return
    for recorded in events:
        wanted = wanted or recorded.event.session_id
        if recorded.event.session_id == wanted:
            yield recorded


class _Run:
    """One export: the builder's spans through a bounded queue to one exporting task."""

    def __init__(self, sdk: SdkSpans, sinks: list[SpanExporter]) -> None:
        self._sdk = sdk
        self._sinks = sinks
        self._queue: asyncio.Queue[SpanRecord | None] = asyncio.Queue(maxsize=4 * _BATCH)
        self.exported = 0
        self.failed = 0

    async def feed(
        self, events: AsyncIterator[RecordedEvent], *, include_content: bool
    ) -> tuple[str, int]:
        """Build and export the spans; return the session id and the unfinished count."""
        builder = TraceBuilder(include_content=include_content)
        session = ""
        # The exporting task is owned here: awaited at the end, cancelled and awaited if
        # reading the events fails or this export is itself cancelled.
        exporting = asyncio.create_task(self._export_batches())
        try:
            async for recorded in events:
                session = session or recorded.event.session_id
                for span in builder.add(recorded):
                    await self._put(span, exporting)
                if builder.ended(session):
                    break
            rest = builder.finish()
            for span in rest:
                await self._put(span, exporting)
            await self._put(None, exporting)
            await exporting
        finally:
            if not exporting.done():
                exporting.cancel()
                await asyncio.wait([exporting])
        unfinished = sum(1 for s in rest if s.attributes.get("loomkin.unfinished") is True)
        return session, unfinished

    async def _put(self, item: SpanRecord | None, exporting: asyncio.Task[None]) -> None:
        """Queue ``item``; if the queue is full, wait for room or for the exporter to fail."""
        if not self._queue.full():
            self._queue.put_nowait(item)
            return
        put = asyncio.create_task(self._queue.put(item))
        try:
            await asyncio.wait([put, exporting], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
                await asyncio.wait([put])
        if put.cancelled():
            await exporting  # it failed: raise its error rather than wait for room
            raise AssertionError("the exporting task ended before the last span")

    async def _export_batches(self) -> None:
        from loomkin.telemetry.otel import export_batch  # the SDK is there: feed() checked

        while True:
            batch, done = await self._next_batch()
            if batch:
                spans = self._sdk.convert(batch)
                accepted = await asyncio.to_thread(export_batch, self._sinks, spans)
                self.exported += len(spans) if accepted else 0
                self.failed += 0 if accepted else len(spans)
            if done:
                return

    async def _next_batch(self) -> tuple[list[SpanRecord], bool]:
        """Wait for a span, then take what else is queued (up to a batch); True at the end."""
        batch: list[SpanRecord] = []
        item = await self._queue.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= _BATCH or self._queue.empty():
                return batch, False
            item = self._queue.get_nowait()
        return batch, True

    def shutdown(self) -> None:
        """Shut every exporter and the SDK provider down (blocking: flushes)."""
        _shutdown(self._sinks)
        self._sdk.close()


def _shutdown(sinks: Sequence[SpanExporter]) -> None:
    for sink in sinks:
        sink.shutdown()

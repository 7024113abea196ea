from __future__ import annotations

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest
from _telemetry_log import CODER, LEAD, SESSION, SESSION_UUID, Log, session_log
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from loomkin.core.events import ToolCallCompleted, ToolCallStarted
from loomkin.errors import ConfigError
from loomkin.ids import CallId
from loomkin.telemetry import OTEL_INSTALL_HINT, export_session

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence
    from pathlib import Path

    from opentelemetry.proto.trace.v1.trace_pb2 import Span
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

    from loomkin.core.events import RecordedEvent

SPANS = 11
"""Spans in ``session_log()``: session, 2 teams, 3 agents, 3 model calls, 2 tool calls."""


def named(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


async def test_sdk_spans_keep_the_tree_times_and_attributes() -> None:
    memory = InMemorySpanExporter()
    summary = await export_session(session_log().events, exporters=[memory])
    assert (summary.spans, summary.failed, summary.unfinished) == (SPANS, 0, 0)
    assert summary.session_id == SESSION
    assert summary.trace_id == SESSION_UUID.hex
    assert summary.destinations == ("InMemorySpanExporter",)
    assert len(memory.get_finished_spans()) == SPANS
    spans = named(memory.get_finished_spans())  # "chat gpt-4.1" twice: one of them kept

    def parent_of(name: str) -> str:
        parent = spans[name].parent
        assert parent is not None
        (found,) = [n for n, s in spans.items() if s.context.span_id == parent.span_id]
        return found

    assert spans["session demo"].parent is None
    assert parent_of("team root") == "session demo"
    assert parent_of("invoke_agent Lead") == "team root"
    assert parent_of("team backend") == "invoke_agent Lead"
    assert parent_of("invoke_agent Coder") == "team backend"  # the sub-agent under its spawner
    assert parent_of("invoke_agent Helper") == "invoke_agent Lead"
    assert parent_of("chat claude-sonnet-4-5") == "invoke_agent Lead"
    assert parent_of("execute_tool write_file") == "invoke_agent Coder"
    assert {s.context.trace_id for s in spans.values()} == {SESSION_UUID.int}

    chat = spans["chat claude-sonnet-4-5"]
    assert chat.kind is SpanKind.CLIENT
    assert (chat.start_time, chat.end_time) == (1002 * 10**9, 1005 * 10**9)
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.attributes["gen_ai.usage.output_tokens"] == 30
    (retry,) = chat.events
    assert (retry.name, retry.timestamp) == ("loomkin.retry", 1003 * 10**9)

    tool = spans["execute_tool write_file"]
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "write_file"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_2"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.end_time == 1012 * 10**9  # the crash ended it
    coder = spans["invoke_agent Coder"].attributes
    assert coder is not None
    assert (coder["gen_ai.agent.name"], coder["gen_ai.agent.id"]) == ("Coder", CODER)
    resource = spans["session demo"].resource.attributes
    assert resource["service.name"] == "loomkin"


async def test_the_resource_honours_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-agents")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci")
    memory = InMemorySpanExporter()
    await export_session(session_log().events, exporters=[memory])
    resource = memory.get_finished_spans()[0].resource.attributes
    assert (resource["service.name"], resource["deployment.environment"]) == ("my-agents", "ci")


async def test_an_unfinished_log_still_exports_every_span() -> None:
    memory = InMemorySpanExporter()
    summary = await export_session(session_log(ended=False).events, exporters=[memory])
    assert (summary.spans, summary.unfinished) == (SPANS, 5)
    # Two calls are named "chat gpt-4.1"; find the helper's by its call id.
    open_call = next(
        s
        for s in memory.get_finished_spans()
        if s.attributes is not None and s.attributes.get("loomkin.call.id") == "mc_3"
    )
    assert open_call.status.status_code is StatusCode.ERROR
    assert open_call.end_time == 1016 * 10**9


class _Signalled(InMemorySpanExporter):
    """An in-memory exporter that wakes the test's loop on every batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.batch = asyncio.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self._loop.call_soon_threadsafe(self.batch.set)
        return result


async def test_live_export_sends_spans_as_their_events_arrive() -> None:
    events: asyncio.Queue[RecordedEvent] = asyncio.Queue()
    log = session_log().events

    async def live() -> AsyncIterator[RecordedEvent]:
        while True:  # never ends by itself, like a subscription: SessionEnded stops the export
            yield await events.get()

    memory = _Signalled(asyncio.get_running_loop())
    exporting = asyncio.create_task(export_session(live(), exporters=[memory]))
    try:
        for recorded in log[:6]:  # up to the lead's first ModelCallCompleted
            events.put_nowait(recorded)
        async with asyncio.timeout(10):
            await memory.batch.wait()
        assert [s.name for s in memory.get_finished_spans()] == ["chat claude-sonnet-4-5"]
        for recorded in log[6:]:
            events.put_nowait(recorded)
        async with asyncio.timeout(10):
            summary = await exporting
    finally:
        exporting.cancel()
        await asyncio.wait([exporting])
    assert summary.spans == SPANS
    assert len(memory.get_finished_spans()) == SPANS


async def test_events_of_other_sessions_are_skipped() -> None:
    memory = InMemorySpanExporter()
    summary = await export_session(
        session_log().events, exporters=[memory], session_id="session_other"
    )
    assert (summary.spans, summary.session_id, memory.get_finished_spans()) == (0, "", ())


async def test_otlp_json_file(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    summary = await export_session(session_log().events, file=path)
    assert summary.destinations == (str(path),)
    (line,) = path.read_text().splitlines()
    request = json.loads(line)
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == SPANS
    by_name = {s["name"]: s for s in spans}
    lead = by_name["invoke_agent Lead"]
    assert lead["traceId"] == SESSION_UUID.hex  # hex, as OTLP/JSON wants, not base64
    assert by_name["team backend"]["parentSpanId"] == lead["spanId"]
    assert len(lead["spanId"]) == 16
    assert by_name["chat claude-sonnet-4-5"]["kind"] == 3  # SPAN_KIND_CLIENT


def test_a_file_that_cannot_be_written_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write spans to"):
        asyncio.run(export_session([], file=tmp_path / "missing" / "trace.jsonl"))


class _Receiver:
    """An OTLP/HTTP collector on 127.0.0.1: decodes every POST /v1/traces it gets."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces" and status == 200:
                    receiver.requests.append(ExportTraceServiceRequest.FromString(body))
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return  # keep the test output clean; the test asserts on what arrived

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[Span]:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join()


async def test_protobuf_spans_reach_an_otlp_http_collector(receiver: _Receiver) -> None:
    summary = await export_session(session_log().events, otlp_endpoint=receiver.url)
    assert (summary.spans, summary.failed) == (SPANS, 0)
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"
    assert len(receiver.spans()) == SPANS
    spans = {span.name: span for span in receiver.spans()}
    lead, coder = spans["invoke_agent Lead"], spans["invoke_agent Coder"]
    assert lead.trace_id == SESSION_UUID.bytes
    assert spans["team backend"].parent_span_id == lead.span_id
    assert coder.parent_span_id == spans["team backend"].span_id
    chat = spans["chat claude-sonnet-4-5"]
    attributes = {a.key: a.value for a in chat.attributes}
    assert attributes["gen_ai.usage.input_tokens"].int_value == 120
    assert attributes["gen_ai.request.model"].string_value == "claude-sonnet-4-5"
    assert chat.start_time_unix_nano == 1002 * 10**9


async def test_the_standard_otlp_variables_are_honoured(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=loomkin-ci")
    summary = await export_session(session_log().events)
    assert summary.spans == SPANS
    assert summary.destinations == ("OTLP endpoint from OTEL_EXPORTER_OTLP_*",)
    assert receiver.headers[0]["x-tenant"] == "loomkin-ci"


async def test_a_refusing_collector_is_counted_not_raised() -> None:
    refusing = _Receiver(status=400)
    refusing.thread.start()
    try:
        summary = await export_session(session_log().events, otlp_endpoint=refusing.url)
    finally:
        refusing.server.shutdown()
        refusing.server.server_close()
        refusing.thread.join()
    assert (summary.spans, summary.failed) == (0, SPANS)


@pytest.mark.parametrize("url", ["localhost:4318", "ftp://collector/v1/traces", "http://"])
def test_a_bad_endpoint_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        asyncio.run(export_session([], otlp_endpoint=url))


def test_without_the_extra_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if the otel extra were not installed: the SDK's modules cannot be imported.
    monkeypatch.delitem(sys.modules, "loomkin.telemetry.otel")
    for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "google.protobuf.json_format", None)
    with pytest.raises(ConfigError, match=r"not installed: pip install 'loomkin\[otel\]'"):
        asyncio.run(export_session(session_log().events))
    assert "loomkin[otel]" in OTEL_INSTALL_HINT


def long_log(calls: int) -> list[RecordedEvent]:
    """One agent making ``calls`` tool calls: ``calls + 2`` spans (agent and session)."""
    log = Log()
    for n in range(calls):
        call = CallId(f"call_{n}")
        started = ToolCallStarted(
            session_id=SESSION, agent_id=LEAD, call_id=call, tool="file_read", arguments={}
        )
        log.at(n, started)
        log.at(
            n + 0.5,
            ToolCallCompleted(
                session_id=SESSION, agent_id=LEAD, call_id=call, tool="file_read", result="x"
            ),
        )
    return log.events


class _Gated(InMemorySpanExporter):
    """Holds its first batch until the test opens the gate; records batch sizes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self.entered = asyncio.Event()
        self.gate = threading.Event()
        self.sizes: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.sizes.append(len(spans))
        self._loop.call_soon_threadsafe(self.entered.set)
        if not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        return super().export(spans)


async def test_a_slow_exporter_holds_the_reader_back_and_loses_nothing() -> None:
    calls = 3000  # more spans than the queue holds, so the reader must wait for the exporter
    exporter = _Gated(asyncio.get_running_loop())
    exporting = asyncio.create_task(export_session(long_log(calls), exporters=[exporter]))
    try:
        async with asyncio.timeout(30):
            await exporter.entered.wait()
        exporter.gate.set()
        async with asyncio.timeout(60):
            summary = await exporting
    finally:
        exporter.gate.set()
        exporting.cancel()
        await asyncio.wait([exporting])
    assert summary.spans == len(exporter.get_finished_spans()) == calls + 2
    assert max(exporter.sizes) == 512
    assert sum(exporter.sizes) == calls + 2


class _Broken(InMemorySpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("exporter bug")


async def test_an_exporter_that_raises_stops_the_export_with_its_error() -> None:
    # Past the queue's size: the reader is waiting for room when the exporter dies.
    async with asyncio.timeout(60):
        with pytest.raises(RuntimeError, match="exporter bug"):
            await export_session(long_log(3000), exporters=[_Broken()])

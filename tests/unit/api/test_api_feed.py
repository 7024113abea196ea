from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from loomkin.api.feed import MAX_TEXT, feed_row, row_type
from loomkin.core.events import MessageSent, ModelCallStarted, RecordedEvent, ToolCallCompleted
from loomkin.ids import AgentId, CallId, EventId, MessageId, SessionId

if TYPE_CHECKING:
    from starlette.types import Message

    from loomkin.service import Names

    from .conftest import Harness


def _parse_sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
        if "id" in fields:
            events.append(fields)
    return events


async def test_feed_pages_rows_in_log_order(harness: Harness) -> None:
    await harness.wait_prompt()
    first = (await harness.client.get(f"{harness.base}/feed?limit=10")).json()
    assert first["rows"][0]["kind"] == "session_started"
    positions = [r["position"] for r in first["rows"]]
    assert positions == sorted(positions)
    rest = (await harness.client.get(f"{harness.base}/feed?after={first['last_position']}")).json()
    assert rest["rows"][0]["position"] > first["last_position"]
    kinds = {r["kind"] for r in first["rows"] + rest["rows"]}
    assert "transcript_appended" not in kinds
    types = {r["type"] for r in first["rows"] + rest["rows"]}
    assert {"spawn", "task_created", "tool_call", "model_call", "permission"} <= types
    alice = [r for r in rest["rows"] if r["actor"] == "alice"]
    assert alice
    assert all(r["team"] == "build" for r in alice)


async def test_feed_validates_its_query(harness: Harness) -> None:
    for query in ("after=-1", "limit=0", "limit=99999", "after=abc"):
        response = await harness.client.get(f"{harness.base}/feed?{query}")
        assert response.status_code == 422, query
        assert response.json()["errors"]


async def test_event_stream_catches_up_with_ids_and_last_event_id(harness: Harness) -> None:
    await harness.wait_prompt()
    url = f"{harness.base}/events?follow=false"
    everything = _parse_sse((await harness.client.get(url)).text)
    ids = [int(e["id"]) for e in everything]
    assert ids == sorted(ids)
    assert all(e["event"] == "row" for e in everything)
    assert json.loads(everything[0]["data"])["kind"] == "session_started"
    middle = ids[len(ids) // 2]
    resumed = _parse_sse(
        (await harness.client.get(url, headers={"Last-Event-ID": str(middle)})).text
    )
    expected = [i for i in ids if i > middle]  # agents may still work: later rows may follow
    resumed_ids = [int(e["id"]) for e in resumed]
    assert resumed_ids[: len(expected)] == expected
    by_query = _parse_sse((await harness.client.get(f"{url}&after={middle}")).text)
    assert by_query[: len(resumed)] == resumed


async def test_event_stream_refuses_bad_positions(harness: Harness) -> None:
    url = f"{harness.base}/events?follow=false"
    for headers in ({"Last-Event-ID": "abc"}, {"Last-Event-ID": "-3"}):
        response = await harness.client.get(url, headers=headers)
        assert response.status_code == 422
        assert "Last-Event-ID" in response.json()["detail"]
    assert (await harness.client.get(f"{url}&after=-1")).status_code == 422
    assert (await harness.client.get("/api/sessions/nope/events")).status_code == 404


async def test_live_stream_delivers_new_rows_and_ends_at_shutdown(harness: Harness) -> None:
    """Drive the ASGI app directly: httpx's ASGI transport buffers whole responses."""
    prompt = await harness.wait_prompt()
    start = harness.loomkin.last_position
    sent: list[Message] = []
    disconnect = asyncio.Event()

    async def receive() -> Message:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"{harness.base}/events",
        "raw_path": f"{harness.base}/events".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"last-event-id", str(start).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    app_task = asyncio.create_task(harness.app(scope, receive, send))
    try:
        await harness.session.answer_permission(prompt.request_id, "allow_once")

        def body() -> str:
            return b"".join(m.get("body", b"") for m in sent).decode()

        await harness.until(lambda: "permission_resolved" in body())
        rows = _parse_sse(body())
        assert int(rows[0]["id"]) == start + 1
        ids = [int(r["id"]) for r in rows]
        assert ids == sorted(set(ids))
        assert sent[0]["status"] == 200
        assert len(harness.app.state.ctx.streams) == 1
        harness.app.state.ctx.close_streams()
        await asyncio.wait_for(app_task, 5)
    finally:
        disconnect.set()
        if not app_task.done():
            app_task.cancel()
    assert not harness.app.state.ctx.streams


def _names(harness: Harness) -> Names:
    return harness.loomkin.names()


def _recorded(event: object, position: int = 1) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        stream="s",
        stream_version=1,
        event_id=EventId("e"),
        recorded_at=0.0,
        event=event,  # type: ignore[arg-type]
    )


async def test_rows_type_messages_and_trim_bulky_payloads(harness: Harness) -> None:
    sid = SessionId(harness.session.session_id)

    def message(msg_type: str) -> MessageSent:
        return MessageSent(
            session_id=sid, message_id=MessageId("m"), msg_type=msg_type, tier="high", content="x"
        )

    assert row_type(message("conflict_detected")) == "conflict"
    assert row_type(message("vote_request")) == "vote"
    assert row_type(message("budget_exceeded")) == "escalation"
    assert row_type(message("peer_message")) == "message"
    started = ModelCallStarted(
        session_id=sid,
        agent_id=AgentId("agent_x"),
        call_id=CallId("c"),
        iteration=1,
        model="m",
        request={
            "messages": [{"kind": "user", "text": "hi"}],
            "tools": [{"name": "file_read", "description": "long", "parameters": {}}],
        },
    )
    row = feed_row(_recorded(started), _names(harness))
    assert row is not None
    assert row.payload["request"] == {
        "messages": [{"kind": "user", "text": "hi"}],
        "tools": ["file_read"],
    }
    done = ToolCallCompleted(
        session_id=sid,
        agent_id=AgentId("agent_x"),
        call_id=CallId("c"),
        tool="t",
        result="y" * 9000,
    )
    big = feed_row(_recorded(done), _names(harness))
    assert big is not None
    result = big.payload["result"]
    assert isinstance(result, str)
    assert len(result) < 9000
    assert result.startswith("y" * MAX_TEXT)
    assert big.actor == "agent_x"  # unknown agents are shown by id

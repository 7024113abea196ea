import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from loomkin.core.chat import (
    AssistantMessage,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from loomkin.core.events.base import JSON
from loomkin.errors import ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
    complete,
)
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.wire import SSE, Hang, JSONReply, SSEReply, WireServer

NO_JITTER = RetryPolicy(random=lambda: 0.0)


async def drain(stream: AsyncIterator[StreamEvent], into: list[object]) -> None:
    async for event in stream:
        into.append(event)


def ev(data: dict[str, JSON]) -> SSE:
    kind = data["type"]
    assert isinstance(kind, str)
    return SSE(json.dumps(data), event=kind)


def message_start(input_tokens: int) -> SSE:
    return ev(
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1},
            },
        }
    )


def text_block(index: int, *parts: str) -> list[SSE]:
    events = [
        ev(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
        )
    ]
    events += [
        ev(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": p},
            }
        )
        for p in parts
    ]
    events.append(ev({"type": "content_block_stop", "index": index}))
    return events


def tool_block(index: int, call_id: str, name: str, *parts: str) -> list[SSE]:
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "tool_use", "id": call_id, "name": name, "input": {}},
    }
    events = [ev(start)]  # type: ignore[arg-type]
    events += [
        ev(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
        )
        for p in parts
    ]
    events.append(ev({"type": "content_block_stop", "index": index}))
    return events


def message_end(stop_reason: str, output_tokens: int) -> list[SSE]:
    return [
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            }
        ),
        ev({"type": "message_stop"}),
    ]


def error(status: int, kind: str, message: str) -> JSONReply:
    body: JSON = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONReply(status=status, body=body)


def model(server: WireServer, timeout: float = 120.0) -> AnthropicModel:
    return AnthropicModel(
        "claude-test",
        api_key="sk-ant-test",
        base_url=server.base_url,
        timeout=timeout,
        key_env="ANTHROPIC_API_KEY",
    )


def request(*tools: ToolSchema) -> ModelRequest:
    return ModelRequest(
        messages=(SystemMessage(text="You are terse."), UserMessage(text="hi")), tools=tools
    )


async def test_text_stream_with_usage() -> None:
    events = [
        message_start(20),
        ev({"type": "ping"}),
        *text_block(0, "Hel", "lo"),
        *message_end("end_turn", 5),
    ]
    async with WireServer() as server:
        server.reply(SSEReply(events=tuple(events)))
        got = [e async for e in model(server).stream(request())]
    assert got == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        UsageReport(input_tokens=20, output_tokens=5),
        StreamEnd(stop_reason="stop"),
    ]
    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert any("sk-ant-test" in v for v in sent.headers.values())  # x-api-key or bearer
    body = sent.json()
    assert isinstance(body, dict)
    eph = {"type": "ephemeral"}
    assert body["system"] == [{"type": "text", "text": "You are terse.", "cache_control": eph}]
    assert body["stream"] is True
    assert body["max_tokens"] == 8192
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": eph}]}
    ]


async def test_tool_use_blocks_with_input_json_delta() -> None:
    events = [
        message_start(40),
        *text_block(0, "Reading."),
        *tool_block(1, "toolu_a", "read_file", '{"pa', 'th": "a.py"}'),
        *tool_block(2, "toolu_b", "ls"),
        *message_end("tool_use", 17),
    ]
    schema = ToolSchema(name="read_file", description="Read a file.", parameters={"type": "object"})
    async with WireServer() as server:
        server.reply(SSEReply(events=tuple(events)))
        raw = [e async for e in model(server).stream(request(schema))]
    assert next(e for e in raw if isinstance(e, ToolCallDelta)) == ToolCallDelta(
        index=0, call_id="toolu_a", name="read_file"
    )
    from loomkin.llm.model import ResponseBuilder

    builder = ResponseBuilder()
    for e in raw:
        builder.add(e)
    response = builder.build()
    assert response.text == "Reading."
    assert response.tool_calls == (
        ToolCall(call_id="toolu_a", name="read_file", arguments='{"path": "a.py"}'),
        ToolCall(call_id="toolu_b", name="ls", arguments="{}"),
    )
    assert response.stop_reason == "tool_calls"
    assert (response.input_tokens, response.output_tokens) == (40, 17)
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert body["tools"] == [
        {
            "name": "read_file",
            "description": "Read a file.",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        }
    ]


async def test_transcript_translation() -> None:
    req = ModelRequest(
        messages=(
            SystemMessage(text="sys"),
            UserMessage(text="go"),
            AssistantMessage(
                text="ok",
                tool_calls=(
                    ToolCall(call_id="t1", name="ls", arguments="{}"),
                    ToolCall(call_id="t2", name="read", arguments="{bad"),
                ),
            ),
            ToolResultMessage(call_id="t1", name="ls", content="a.py"),
            ToolResultMessage(call_id="t2", name="read", content="invalid JSON", is_error=True),
            SystemMessage(text="budget low"),
        ),
        max_tokens=99,
        temperature=0.3,
    )
    events = [message_start(1), *text_block(0, "x"), *message_end("max_tokens", 1)]
    async with WireServer() as server:
        server.reply(SSEReply(events=tuple(events)))
        response = await complete(model(server), req)
    assert response.stop_reason == "length"
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert body["system"] == [
        {"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["max_tokens"] == 99
    assert body["temperature"] == 0.3
    eph = {"type": "ephemeral"}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "go", "cache_control": eph}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "ok"},
                {"type": "tool_use", "id": "t1", "name": "ls", "input": {}},
                {
                    "type": "tool_use",
                    "id": "t2",
                    "name": "read",
                    "input": {"invalid_arguments": "{bad"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a.py", "is_error": False},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": "invalid JSON",
                    "is_error": True,
                },
                {"type": "text", "text": "[system notice] budget low", "cache_control": eph},
            ],
        },
    ]


@pytest.mark.looptime
async def test_529_then_429_then_success_calls_on_retry() -> None:
    seen: list[tuple[int, type, float]] = []
    ok = [message_start(1), *text_block(0, "ok"), *message_end("end_turn", 1)]
    async with WireServer() as server:
        server.reply(
            error(529, "overloaded_error", "Overloaded"),
            error(429, "rate_limit_error", "slow"),
            SSEReply(events=tuple(ok)),
        )
        m = RetryingModel(
            model(server), policy=NO_JITTER, on_retry=lambda a, e, d: seen.append((a, type(e), d))
        )
        response = await complete(m, request())
    assert response.text == "ok"
    assert seen == [(1, RateLimited, 1.0), (2, RateLimited, 2.0)]


@pytest.mark.looptime
async def test_500_forever_ends_unavailable() -> None:
    async with WireServer(lambda r: error(500, "api_error", "internal")) as server:
        with pytest.raises(ProviderUnavailable, match="internal"):
            await complete(RetryingModel(model(server), policy=NO_JITTER), request())
    assert len(server.requests) == 4


async def test_401_is_permanent_and_names_the_variable() -> None:
    async with WireServer() as server:
        server.reply(error(401, "authentication_error", "invalid x-api-key"))
        with pytest.raises(ProviderError, match="check ANTHROPIC_API_KEY") as info:
            await complete(RetryingModel(model(server)), request())
    assert not info.value.transient
    assert len(server.requests) == 1


async def test_timeout() -> None:
    async with WireServer() as server:
        server.reply(Hang())
        with pytest.raises(ProviderTimeout):
            await complete(model(server, timeout=0.2), request())


async def test_error_event_mid_stream_is_raised() -> None:
    events = [
        message_start(1),
        *text_block(0, "part"),
        SSE(
            json.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
            event="error",
        ),
    ]
    async with WireServer() as server:
        server.reply(SSEReply(events=tuple(events)))
        got: list[object] = []
        with pytest.raises(ProviderError, match="Overloaded"):
            await drain(RetryingModel(model(server), policy=NO_JITTER).stream(request()), got)
    assert got == [TextDelta(text="part")]
    assert len(server.requests) == 1


async def test_abandoning_the_stream_closes_the_connection() -> None:
    events = [message_start(1), *text_block(0, "a", "b")]
    async with WireServer() as server:
        server.reply(SSEReply(events=tuple(events), hold_open=True))
        stream = model(server).stream(request())
        assert await anext(stream) == TextDelta(text="a")
        await stream.aclose()
        async with asyncio.timeout(5):
            await server.wait_disconnect()

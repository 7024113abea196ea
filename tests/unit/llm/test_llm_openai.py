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
    ToolSchema,
    UsageReport,
    complete,
)
from loomkin.llm.profiles import GENERIC_PROFILE, LLAMACPP_PROFILE, OPENAI_PROFILE
from loomkin.llm.providers._errors import status_error
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.wire import SSE, Hang, JSONReply, SSEReply, WireRequest, WireServer

NO_JITTER = RetryPolicy(random=lambda: 0.0)


async def drain(stream: AsyncIterator[StreamEvent], into: list[object]) -> None:
    async for event in stream:
        into.append(event)


def chunk(delta: dict[str, JSON], finish: str | None = None) -> SSE:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return SSE(json.dumps(body))


def usage_chunk(prompt: int, completion: int) -> SSE:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return SSE(json.dumps(body))


DONE = SSE("[DONE]")


def text_stream(*parts: str) -> SSEReply:
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in parts]
    events += [chunk({}, "stop"), usage_chunk(12, 3), DONE]
    return SSEReply(events=tuple(events))


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> JSONReply:
    body: JSON = {"error": {"message": message, "type": "x", "code": None}}
    return JSONReply(status=status, body=body, headers=headers)


def request(*tools: ToolSchema) -> ModelRequest:
    return ModelRequest(
        messages=(SystemMessage(text="You are terse."), UserMessage(text="hi")), tools=tools
    )


def model(server: WireServer, **kwargs: object) -> OpenAIModel:
    return OpenAIModel("gpt-test", api_key="sk-test", base_url=server.base_url + "/v1", **kwargs)  # type: ignore[arg-type]


async def test_text_stream_with_usage() -> None:
    async with WireServer() as server:
        server.reply(text_stream("Hel", "lo"))
        events = [e async for e in model(server, profile=OPENAI_PROFILE).stream(request())]
    assert events == [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        UsageReport(input_tokens=12, output_tokens=3),
        StreamEnd(stop_reason="stop"),
    ]
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    body = sent.json()
    assert isinstance(body, dict)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
    ]


async def test_tool_call_deltas_across_chunks() -> None:
    events = (
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"pa'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'th": "a.py"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "ls", "arguments": "{}"},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
        usage_chunk(30, 9),
        DONE,
    )
    schema = ToolSchema(
        name="read_file",
        description="Read a file.",
        parameters={"type": "object", "properties": {"path": {"type": "string"}}},
    )
    async with WireServer() as server:
        server.reply(SSEReply(events=events))
        m = model(server)
        response = await complete(m, request(schema))
    assert response.tool_calls == (
        ToolCall(call_id="call_a", name="read_file", arguments='{"path": "a.py"}'),
        ToolCall(call_id="call_b", name="ls", arguments="{}"),
    )
    assert response.stop_reason == "tool_calls"
    assert (response.input_tokens, response.output_tokens) == (30, 9)
    assert response.complete
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file.",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]


async def test_stop_after_tool_calls_is_normalised_and_ids_may_be_missing() -> None:
    events = (
        chunk({"tool_calls": [{"index": 0, "function": {"name": "ls", "arguments": "{}"}}]}),
        chunk({}, "stop"),
        DONE,
    )
    async with WireServer() as server:
        server.reply(SSEReply(events=events))
        response = await complete(model(server, profile=GENERIC_PROFILE), request())
    assert response.stop_reason == "tool_calls"
    assert response.tool_calls[0].call_id.startswith("call_")
    assert (response.input_tokens, response.output_tokens) == (0, 0)


def transcript() -> ModelRequest:
    return ModelRequest(
        messages=(
            SystemMessage(text="sys"),
            UserMessage(text="list files"),
            AssistantMessage(tool_calls=(ToolCall(call_id="c1", name="ls", arguments="{}"),)),
            ToolResultMessage(call_id="c1", name="ls", content="a.py"),
        ),
        max_tokens=50,
        temperature=0.5,
    )


async def test_transcript_translation_for_official_openai() -> None:
    async with WireServer() as server:
        server.reply(text_stream("done"))
        await complete(model(server, profile=OPENAI_PROFILE), transcript())
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a.py"},
    ]
    assert body["max_completion_tokens"] == 50
    assert "max_tokens" not in body
    assert body["temperature"] == 0.5


def llamacpp_handler(req: WireRequest) -> JSONReply | SSEReply:
    body = req.json()
    assert isinstance(body, dict)
    messages = body["messages"]
    assert isinstance(messages, list)
    for message in messages:
        if isinstance(message, dict) and message.get("content", "") is None:
            return error(500, "Assistant message must contain either 'content' or 'tool_calls'!")
    return text_stream("ok")


async def test_llamacpp_quirk_sends_empty_content_instead_of_null() -> None:
    async with WireServer(llamacpp_handler) as server:
        response = await complete(model(server, profile=LLAMACPP_PROFILE), transcript())
        with pytest.raises(ProviderUnavailable, match="must contain either"):
            await complete(model(server, profile=OPENAI_PROFILE), transcript())
    assert response.text == "ok"
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert isinstance(body["messages"], list)
    assert body["messages"][2]["content"] == ""  # type: ignore[call-overload,index]
    assert body["max_tokens"] == 50


async def test_401_is_permanent_with_a_clear_message() -> None:
    async with WireServer() as server:
        server.reply(error(401, "Incorrect API key provided"), text_stream("never"))
        calls: list[int] = []
        m = RetryingModel(model(server), on_retry=lambda a, e, d: calls.append(a))
        with pytest.raises(ProviderError, match="API key was rejected") as info:
            await complete(m, request())
    assert info.value.status == 401
    assert not info.value.transient
    assert "Incorrect API key provided" in str(info.value)
    assert calls == []
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind", "transient", "text"),
    [
        (401, ProviderError, False, "API key was rejected (check OPENAI_API_KEY)"),
        (403, ProviderError, False, "may not use this model"),
        (404, ProviderError, False, "is the model name right?"),
        (400, ProviderError, False, "HTTP 400"),
        (408, ProviderTimeout, True, "request timeout"),
        (429, RateLimited, True, "rate limited"),
        (529, RateLimited, True, "overloaded"),
        (502, ProviderUnavailable, True, "server error"),
        (504, ProviderUnavailable, True, "server error"),
    ],
)
def test_status_mapping(status: int, kind: type, transient: bool, text: str) -> None:
    err = status_error("openai:gpt-4.1", status, "detail", key_env="OPENAI_API_KEY")
    assert type(err) is kind
    assert err.transient is transient
    assert text in str(err)
    assert str(err).startswith(f"openai:gpt-4.1: HTTP {status}")


@pytest.mark.looptime
async def test_429_then_success_retries_and_honours_retry_after() -> None:
    seen: list[tuple[int, str, float]] = []

    def on_retry(attempt: int, err: ProviderError, delay: float) -> None:
        seen.append((attempt, type(err).__name__, delay))

    async with WireServer() as server:
        server.reply(error(429, "slow down", (("retry-after", "7"),)), text_stream("ok"))
        m = RetryingModel(model(server), policy=NO_JITTER, on_retry=on_retry)
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = await complete(m, request())
        elapsed = loop.time() - start
    assert response.text == "ok"
    assert seen == [(1, "RateLimited", 7.0)]
    assert elapsed == pytest.approx(7.0, abs=0.5)
    assert len(server.requests) == 2


@pytest.mark.looptime
async def test_500_forever_gives_up_after_max_retries_in_virtual_time() -> None:
    delays: list[float] = []
    async with WireServer(lambda req: error(500, "boom")) as server:
        m = RetryingModel(
            model(server), policy=NO_JITTER, on_retry=lambda a, e, d: delays.append(d)
        )
        with pytest.raises(ProviderUnavailable, match="HTTP 500") as info:
            await complete(m, request())
    assert delays == [1.0, 2.0, 4.0]
    assert len(server.requests) == 4
    assert info.value.__notes__ == ["gave up after 3 retries"]


@pytest.mark.looptime
async def test_503_and_529_are_transient() -> None:
    async with WireServer() as server:
        server.reply(error(503, "busy"), error(529, "overloaded"), text_stream("ok"))
        response = await complete(RetryingModel(model(server), policy=NO_JITTER), request())
    assert response.text == "ok"


async def test_timeout_when_the_server_never_answers() -> None:
    async with WireServer() as server:
        server.reply(Hang())
        with pytest.raises(ProviderTimeout, match=r"no answer within 0\.2 s"):
            await complete(model(server, timeout=0.2), request())


async def test_connection_refused_is_unavailable() -> None:
    async with WireServer() as server:
        url = server.base_url
    m = OpenAIModel("gpt-test", api_key="k", base_url=url + "/v1", timeout=1)
    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        await complete(m, request())


async def test_stream_without_finish_reason_is_an_error() -> None:
    async with WireServer() as server:
        server.reply(SSEReply(events=(chunk({"content": "partial"}),)))
        with pytest.raises(ProviderUnavailable, match="ended before the model finished"):
            await complete(model(server), request())


async def test_abandoning_the_stream_closes_the_connection() -> None:
    async with WireServer() as server:
        server.reply(
            SSEReply(events=(chunk({"content": "a"}), chunk({"content": "b"})), hold_open=True)
        )
        stream = model(server).stream(request())
        first = await anext(stream)
        await stream.aclose()
        async with asyncio.timeout(5):
            await server.wait_disconnect()
    assert first == TextDelta(text="a")


async def test_error_after_first_event_is_not_retried() -> None:
    async with WireServer() as server:
        server.reply(SSEReply(events=(chunk({"content": "a"}),)), text_stream("never"))
        m = RetryingModel(model(server), policy=NO_JITTER)
        got: list[object] = []
        with pytest.raises(ProviderUnavailable):
            await drain(m.stream(request()), got)
    assert got == [TextDelta(text="a")]
    assert len(server.requests) == 1


async def test_name_uses_the_provider_alias() -> None:
    m = OpenAIModel(
        "llama3.1:8b", api_key="x", base_url="http://localhost:11434/v1", provider="ollama"
    )
    assert m.name == "ollama:llama3.1:8b"
    assert m.profile == GENERIC_PROFILE
    await m.aclose()

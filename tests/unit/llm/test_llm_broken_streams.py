"""Issue #14: whatever a server sends, the adapters raise a ProviderError (never a raw one).

The real ``openai`` and ``anthropic`` SDKs against a local server sending broken streams:
lines that are not JSON, bytes that are not UTF-8, events nested past the parser's depth,
fields of the wrong type, error events, connections cut mid-event.
"""

from __future__ import annotations

import json

import pytest

from loomkin.core.chat import UserMessage
from loomkin.errors import ProviderUnavailable
from loomkin.llm.model import ModelRequest, ResponseBuilder, TextDelta, complete
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.llm.retry import RetryingModel, RetryPolicy
from loomkin.testing.wire import SSE, Part, StreamReply, WireServer

REQUEST = ModelRequest(messages=(UserMessage(text="hi"),))


def chunk(delta: dict[str, object], finish: str | None = None) -> SSE:
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return SSE(json.dumps(body))


OPENAI_BROKEN: dict[str, tuple[Part, ...]] = {
    "not-json": (chunk({"content": "a"}), b'data: {"id": "c", "choi\n\n'),
    "not-utf8-first": (b'data: {"x": "\xff\xfe"}\n\n',),
    "not-utf8-later": (chunk({"content": "a"}), b'data: {"x": "\xff"}\n\n'),
    "nested-chunk": (SSE('{"choices": ' + "[" * 50_000 + "]" * 50_000 + "}"),),
    "error-event": (chunk({"content": "a"}), SSE(json.dumps({"error": {"message": "overloaded"}}))),
    "choices-not-a-list": (SSE(json.dumps({"id": "c", "choices": "x"})),),
    "content-not-text": (chunk({"content": 5}),),
    "index-not-int": (chunk({"tool_calls": [{"index": "x", "function": {"arguments": ""}}]}),),
    "tokens-not-int": (
        SSE(json.dumps({"id": "c", "choices": [], "usage": {"prompt_tokens": "x"}})),
    ),
    "finish-not-text": (chunk({"content": "a"}, finish=7),),  # type: ignore[arg-type]
    "cut-mid-event": (chunk({"content": "a"}), b'data: {"id"'),
    "html": (b"<html>502 Bad Gateway</html>",),
}


@pytest.mark.parametrize("parts", OPENAI_BROKEN.values(), ids=OPENAI_BROKEN.keys())
async def test_openai_broken_streams_are_transient_provider_errors(
    parts: tuple[Part, ...],
) -> None:
    async with WireServer(lambda _r: StreamReply(parts=parts)) as server:
        model = OpenAIModel("m", api_key="k", base_url=f"{server.base_url}/v1", timeout=5)
        with pytest.raises(ProviderUnavailable) as info:
            await complete(model, REQUEST)
        await model.aclose()
    assert info.value.transient
    assert str(info.value).startswith("openai:m: ")


@pytest.mark.looptime
async def test_a_stream_broken_before_its_first_event_is_retried() -> None:
    async with WireServer() as server:
        server.reply(
            StreamReply(parts=(b"data: \xff\n\n",)),
            StreamReply(parts=(chunk({"content": "fine"}), chunk({}, "stop"), SSE("[DONE]"))),
        )
        inner = OpenAIModel("m", api_key="k", base_url=f"{server.base_url}/v1", timeout=5)
        response = await complete(
            RetryingModel(inner, policy=RetryPolicy(random=lambda: 0.0)), REQUEST
        )
        await inner.aclose()
    assert response.text == "fine"
    assert len(server.requests) == 2


def ev(data: dict[str, object]) -> SSE:
    return SSE(json.dumps(data), event=str(data["type"]))


START = ev(
    {
        "type": "message_start",
        "message": {
            "id": "msg",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    }
)

ANTHROPIC_BROKEN: dict[str, tuple[Part, ...]] = {
    "not-json": (START, b'event: content_block_delta\ndata: {"type": "cont\n\n'),
    "not-utf8": (START, b'event: ping\ndata: {"x": "\xff"}\n\n'),
    "nested-event": (SSE('{"type": ' + "[" * 50_000 + "]" * 50_000 + "}", event="message_start"),),
    "error-event": (
        START,
        ev({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ),
    "cut-mid-event": (START, b"event: content_block_start\ndata: {"),
    "usage-not-int": (
        ev(
            {
                "type": "message_start",
                "message": {"id": "m", "usage": {"input_tokens": "x", "output_tokens": 1}},
            }
        ),
    ),
}


@pytest.mark.parametrize("parts", ANTHROPIC_BROKEN.values(), ids=ANTHROPIC_BROKEN.keys())
async def test_anthropic_broken_streams_are_transient_provider_errors(
    parts: tuple[Part, ...],
) -> None:
    async with WireServer(lambda _r: StreamReply(parts=parts)) as server:
        model = AnthropicModel("claude", api_key="k", base_url=server.base_url, timeout=5)
        with pytest.raises(ProviderUnavailable) as info:
            await complete(model, REQUEST)
        await model.aclose()
    assert info.value.transient


async def test_anthropic_skips_event_types_it_does_not_know() -> None:
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "ok"},
    }
    parts: tuple[Part, ...] = (
        START,
        ev({"type": "brand_new_event", "x": 1}),
        ev(block),
        ev(delta),
        ev({"type": "content_block_stop", "index": 0}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            }
        ),
        ev({"type": "message_stop"}),
    )
    async with WireServer(lambda _r: StreamReply(parts=parts)) as server:
        model = AnthropicModel("claude", api_key="k", base_url=server.base_url, timeout=5)
        response = await complete(model, REQUEST)
        await model.aclose()
    assert response.text == "ok"


@pytest.mark.parametrize(
    "event",
    [
        TextDelta(text=5),  # type: ignore[arg-type]
        TextDelta(text=None),  # type: ignore[arg-type]
    ],
)
def test_the_response_builder_refuses_mistyped_events(event: TextDelta) -> None:
    builder = ResponseBuilder()
    with pytest.raises(TypeError, match="stream event field 'text'"):
        builder.add(event)
    assert builder.partial().text == ""


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_deeply_nested_event_is_refused_before_the_sdk_parses_it(provider: str) -> None:
    # Parsing it would run the interpreter to its recursion limit, where finalizers that a
    # garbage collection happens to run fail: the guard refuses it unparsed.
    nested = (
        OPENAI_BROKEN["nested-chunk"] if provider == "openai" else ANTHROPIC_BROKEN["nested-event"]
    )
    async with WireServer(lambda _r: StreamReply(parts=nested)) as server:
        if provider == "openai":
            model: OpenAIModel | AnthropicModel = OpenAIModel(
                "m", api_key="k", base_url=f"{server.base_url}/v1", timeout=5
            )
        else:
            model = AnthropicModel("claude", api_key="k", base_url=server.base_url, timeout=5)
        with pytest.raises(ProviderUnavailable, match="nested more than 128 levels"):
            await complete(model, REQUEST)
        await model.aclose()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_deeply_nested_error_body_is_a_transient_broken_stream(provider: str) -> None:
    body = b'{"error": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    async with WireServer(
        lambda _r: StreamReply(parts=(body,), status=500, content_type="application/json")
    ) as server:
        if provider == "openai":
            model: OpenAIModel | AnthropicModel = OpenAIModel(
                "m", api_key="k", base_url=f"{server.base_url}/v1", timeout=5
            )
        else:
            model = AnthropicModel("claude", api_key="k", base_url=server.base_url, timeout=5)
        with pytest.raises(ProviderUnavailable, match="nested more than 128 levels") as info:
            await complete(model, REQUEST)
        await model.aclose()
    assert info.value.transient

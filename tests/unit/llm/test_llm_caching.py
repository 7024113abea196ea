"""Prompt caching on the wire: breakpoints, byte-stable prefixes, cached tokens and their price."""

import json
from itertools import pairwise

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from loomkin.core.events.base import JSON
from loomkin.llm.caching import estimate_tokens, mark_anthropic_breakpoints, tool_schema_tokens
from loomkin.llm.model import ModelRequest, ToolSchema, UsageReport, complete
from loomkin.llm.pricing import PriceTable
from loomkin.llm.profiles import GENERIC_PROFILE, OPENAI_PROFILE
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.testing.wire import SSE, SSEReply, WireServer

TOOLS = (
    ToolSchema(
        name="file_read",
        description="Read a file.",
        parameters={"type": "object", "properties": {"path": {"type": "string"}}},
    ),
    ToolSchema(name="shell", description="Run a command.", parameters={"type": "object"}),
)

TURN_1: tuple[ChatMessage, ...] = (
    SystemMessage(text="You are a coder."),
    UserMessage(text="Fix the bug in a.py."),
)
TURN_2: tuple[ChatMessage, ...] = (
    *TURN_1,
    AssistantMessage(
        text="Reading.",
        tool_calls=(ToolCall(call_id="c1", name="file_read", arguments='{"path": "a.py"}'),),
    ),
    ToolResultMessage(call_id="c1", name="file_read", content="x = 1\n" * 50),
)
TURN_3: tuple[ChatMessage, ...] = (
    *TURN_2,
    AssistantMessage(
        text="",
        tool_calls=(ToolCall(call_id="c2", name="shell", arguments='{"command": "pytest"}'),),
    ),
    ToolResultMessage(call_id="c2", name="shell", content="1 passed"),
)


def _strip(value: JSON) -> JSON:
    """The value without cache_control markers (they move; the content must not)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _breakpoints(value: JSON, path: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        if "cache_control" in value:
            found.append(path)
        for key, item in value.items():
            found += _breakpoints(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _breakpoints(item, f"{path}[{index}]")
    return found


def _anthropic_events(read: int, write: int, uncached: int) -> tuple[SSE, ...]:
    def ev(data: dict[str, JSON]) -> SSE:
        return SSE(json.dumps(data), event=str(data["type"]))

    usage: JSON = {
        "input_tokens": uncached,
        "output_tokens": 1,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }
    message: JSON = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return (
        ev({"type": "message_start", "message": message}),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "ok"},
            }
        ),
        ev({"type": "content_block_stop", "index": 0}),
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            }
        ),
        ev({"type": "message_stop"}),
    )


async def test_anthropic_sets_breakpoints_on_a_byte_stable_prefix() -> None:
    async with WireServer() as server:
        for _ in range(3):
            server.reply(SSEReply(events=_anthropic_events(read=900, write=100, uncached=20)))
        model = AnthropicModel("claude-test", api_key="k", base_url=server.base_url)
        responses = [
            await complete(model, ModelRequest(messages=turn, tools=TOOLS))
            for turn in (TURN_1, TURN_2, TURN_3)
        ]
    bodies = [r.json() for r in server.requests]
    for body in bodies:
        assert isinstance(body, dict)
        marks = _breakpoints(body)
        assert len(marks) <= 4  # the API's limit
        assert ".tools[1]" in marks  # the schemas
        assert ".system[0]" in marks  # tools + system prompt
        messages = body["messages"]
        assert isinstance(messages, list)
        last = len(messages) - 1
        assert any(m.startswith(f".messages[{last}].content[") for m in marks)
    # The previous user turn carries a breakpoint too: what the last call wrote is read now.
    third = bodies[2]
    assert isinstance(third, dict)
    assert ".messages[2].content[0]" in _breakpoints(third)  # the last message of call 2
    # The prefix is byte-identical from call to call: tools, system, and the earlier messages.
    for before, after in pairwise(bodies):
        assert isinstance(before, dict)
        assert isinstance(after, dict)
        assert json.dumps(_strip(before["tools"])) == json.dumps(_strip(after["tools"]))
        assert json.dumps(_strip(before["system"])) == json.dumps(_strip(after["system"]))
        old, new = _strip(before["messages"]), _strip(after["messages"])
        assert isinstance(old, list)
        assert isinstance(new, list)
        assert json.dumps(new).startswith(json.dumps(old)[:-1])
    # Usage: reads and writes reported apart, all of them counted as input.
    assert responses[0].input_tokens == 1020
    assert (responses[0].cached_input_tokens, responses[0].cache_write_tokens) == (900, 100)


def _openai_reply(prompt: int, cached: int) -> SSEReply:
    def chunk(body: dict[str, JSON]) -> SSE:
        base: dict[str, JSON] = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-test",
        }
        return SSE(json.dumps({**base, **body}))

    return SSEReply(
        events=(
            chunk({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]}),
            chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            chunk(
                {
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt,
                        "completion_tokens": 1,
                        "total_tokens": prompt + 1,
                        "prompt_tokens_details": {"cached_tokens": cached},
                    },
                }
            ),
            SSE("[DONE]"),
        )
    )


async def test_openai_keeps_the_prefix_byte_stable_and_reports_cached_tokens() -> None:
    async with WireServer() as server:
        for cached in (0, 1024, 2048):
            server.reply(_openai_reply(prompt=3000, cached=cached))
        model = OpenAIModel(
            "gpt-test", api_key="k", base_url=server.base_url + "/v1", profile=OPENAI_PROFILE
        )
        responses = [
            await complete(model, ModelRequest(messages=turn, tools=TOOLS, cache_key="agent-1"))
            for turn in (TURN_1, TURN_2, TURN_3)
        ]
    raw = [r.body.decode() for r in server.requests]
    bodies = [json.loads(r) for r in raw]
    for before, after in pairwise(bodies):
        assert json.dumps(after["tools"]) == json.dumps(before["tools"])
        assert json.dumps(after["messages"]).startswith(json.dumps(before["messages"])[:-1])
    # On the wire, too: the bytes up to the end of the earlier messages are the same.
    first = raw[0]
    end = first.index(json.dumps(bodies[0]["messages"][-1], separators=(",", ":"))[:20])
    assert raw[1][:end] == first[:end]
    assert all(b["prompt_cache_key"] == "agent-1" for b in bodies)
    assert [r.cached_input_tokens for r in responses] == [0, 1024, 2048]
    assert all(r.input_tokens == 3000 for r in responses)


async def test_prompt_cache_key_goes_only_where_it_is_understood() -> None:
    async with WireServer() as server:
        server.reply(_openai_reply(prompt=10, cached=0))
        model = OpenAIModel(
            "local", api_key="k", base_url=server.base_url + "/v1", profile=GENERIC_PROFILE
        )
        await complete(model, ModelRequest(messages=TURN_1, cache_key="agent-1"))
    body = server.requests[0].json()
    assert isinstance(body, dict)
    assert "prompt_cache_key" not in body


def test_cache_prices_per_provider() -> None:
    table = PriceTable()
    # Anthropic: reads at 0.1 x, writes at 1.25 x the input price ($3 / Mtok for Sonnet).
    full = table.cost("anthropic:claude-sonnet-4-5", 1_000_000, 0)
    cached = table.cost("anthropic:claude-sonnet-4-5", 1_000_000, 0, cached_input_tokens=1_000_000)
    written = table.cost("anthropic:claude-sonnet-4-5", 1_000_000, 0, cache_write_tokens=1_000_000)
    assert (full, round(cached, 6), round(written, 6)) == (3.0, 0.3, 3.75)
    # OpenAI: cached input at the listed price, no charge for writing.
    assert round(table.cost("openai:gpt-4.1", 1_000_000, 0, cached_input_tokens=500_000), 6) == 1.25
    assert table.cost("openai:gpt-4.1", 1_000_000, 0, cache_write_tokens=1_000_000) == 2.0
    # A cached count a server exaggerates never makes a call cheaper than free input.
    assert table.cost("openai:gpt-4.1", 100, 0, cached_input_tokens=10**9) >= 0


def test_usage_report_cached_counts_are_bounded_by_the_input() -> None:
    from loomkin.llm.model import ResponseBuilder, StreamEnd

    builder = ResponseBuilder()
    builder.add(
        UsageReport(input_tokens=10, output_tokens=1, cached_input_tokens=50, cache_write_tokens=5)
    )
    builder.add(StreamEnd(stop_reason="stop"))
    response = builder.build()
    assert (response.cached_input_tokens, response.cache_write_tokens) == (10, 0)


def test_breakpoints_never_exceed_four_and_skip_empty_requests() -> None:
    tools: list[object] = []
    messages: list[object] = []
    assert mark_anthropic_breakpoints("", tools, messages) is None
    assert messages == []


def test_estimates_use_the_fixed_rule() -> None:
    request = ModelRequest(messages=(UserMessage(text="x" * 400),), tools=TOOLS)
    assert estimate_tokens(request) == 100 + tool_schema_tokens(TOOLS)
    assert tool_schema_tokens(()) == 0

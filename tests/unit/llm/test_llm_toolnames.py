"""Tool names the providers refuse (an MCP server's ``git.status``) go out as wire names.

OpenAI and Anthropic accept ``^[a-zA-Z0-9_-]{1,64}$`` only; the adapters map names both ways,
so the runtime, the log and the user only ever see the real name.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.chat import AssistantMessage, ToolCall, ToolResultMessage, UserMessage
from loomkin.llm.model import ModelRequest, ResponseBuilder, ToolCallDelta, ToolSchema
from loomkin.llm.providers.anthropic import AnthropicModel
from loomkin.llm.providers.openai import OpenAIModel
from loomkin.llm.toolnames import WireNames, wire_name
from loomkin.testing.wire import SSE, SSEReply, WireServer

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON

ACCEPTED = re.compile(r"[a-zA-Z0-9_-]{1,64}\Z")


def schema(name: str) -> ToolSchema:
    return ToolSchema(name=name, description=f"The {name} tool.", parameters={"type": "object"})


def test_accepted_names_are_sent_as_they_are() -> None:
    assert wire_name("file_read") == "file_read"
    assert wire_name("team-spawn") == "team-spawn"
    request = ModelRequest(messages=(UserMessage(text="hi"),), tools=(schema("shell"),))
    names = WireNames.for_request(request)
    assert names.identity
    assert names.outgoing(request) is request


def test_dotted_long_and_clashing_names_get_distinct_accepted_wire_names() -> None:
    assert wire_name("git.git_status") == "git__git_status"
    long = "server." + "x" * 80
    assert ACCEPTED.match(wire_name(long))
    names = WireNames(("a.b", "a__b", "a/b", long))
    wires = [names.outgoing(_request(n)).tools[0].name for n in ("a.b", "a__b", "a/b", long)]
    assert all(ACCEPTED.match(w) for w in wires)
    assert len(set(wires)) == 4  # a__b is a real name too: a.b must not take its wire form


def _request(name: str) -> ModelRequest:
    return ModelRequest(messages=(UserMessage(text="hi"),), tools=(schema(name),))


@given(st.lists(st.text(min_size=1, max_size=90), min_size=1, max_size=8, unique=True))
def test_every_name_maps_to_an_accepted_wire_name_and_back(names: list[str]) -> None:
    request = ModelRequest(messages=(), tools=tuple(schema(n) for n in names))
    mapping = WireNames.for_request(request)
    sent = mapping.outgoing(request)
    wires = [t.name for t in sent.tools]
    assert len(set(wires)) == len(names)
    for real, wire in zip(names, wires, strict=True):
        assert ACCEPTED.match(wire)
        back = mapping.incoming(ToolCallDelta(index=0, name=wire))
        assert isinstance(back, ToolCallDelta)
        assert back.name == real


def test_the_transcript_is_rewritten_and_unknown_names_are_left_alone() -> None:
    request = ModelRequest(
        messages=(
            UserMessage(text="status?"),
            AssistantMessage(tool_calls=(ToolCall(call_id="c1", name="git.status", arguments=""),)),
            ToolResultMessage(call_id="c1", name="git.status", content="clean"),
        ),
        tools=(schema("git.status"),),
    )
    mapping = WireNames.for_request(request)
    sent = mapping.outgoing(request)
    assistant, result = sent.messages[1], sent.messages[2]
    assert isinstance(assistant, AssistantMessage)
    assert isinstance(result, ToolResultMessage)
    assert (assistant.tool_calls[0].name, result.name) == ("git__status", "git__status")
    unknown = mapping.incoming(ToolCallDelta(index=0, name="made_up"))
    assert unknown == ToolCallDelta(index=0, name="made_up")


def _openai_chunk(delta: dict[str, JSON], finish: str | None = None) -> SSE:
    choice: dict[str, JSON] = {"index": 0, "delta": delta, "finish_reason": finish}
    return SSE(
        json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "gpt-test",
                "choices": [choice],
            }
        )
    )


async def test_openai_adapter_sends_wire_names_and_returns_real_ones() -> None:
    call: dict[str, JSON] = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "git__status", "arguments": "{}"},
    }
    events = (
        _openai_chunk({"role": "assistant", "tool_calls": [call]}),
        _openai_chunk({}, "tool_calls"),
        SSE("[DONE]"),
    )
    async with WireServer() as server:
        server.reply(SSEReply(events=events))
        model = OpenAIModel("gpt-test", api_key="sk-test", base_url=server.base_url + "/v1")
        builder = ResponseBuilder()
        async for event in model.stream(_request("git.status")):
            builder.add(event)
    assert builder.build().tool_calls[0].name == "git.status"
    body = server.requests[0].json()
    assert isinstance(body, dict)
    tools = body["tools"]
    assert isinstance(tools, list)
    assert tools[0] == {
        "type": "function",
        "function": {
            "name": "git__status",
            "description": "The git.status tool.",
            "parameters": {"type": "object"},
        },
    }


def _anthropic(data: dict[str, JSON]) -> SSE:
    kind = data["type"]
    assert isinstance(kind, str)
    return SSE(json.dumps(data), event=kind)


async def test_anthropic_adapter_sends_wire_names_and_returns_real_ones() -> None:
    message: dict[str, JSON] = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 0},
    }
    block: dict[str, JSON] = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "git__status",
        "input": {},
    }
    events = (
        _anthropic({"type": "message_start", "message": message}),
        _anthropic({"type": "content_block_start", "index": 0, "content_block": block}),
        _anthropic({"type": "content_block_stop", "index": 0}),
        _anthropic(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            }
        ),
        _anthropic({"type": "message_stop"}),
    )
    async with WireServer() as server:
        server.reply(SSEReply(events=events))
        model = AnthropicModel("claude-test", api_key="k", base_url=server.base_url)
        builder = ResponseBuilder()
        async for event in model.stream(_request("git.status")):
            builder.add(event)
    assert builder.build().tool_calls[0].name == "git.status"
    body = server.requests[0].json()
    assert isinstance(body, dict)
    tools = body["tools"]
    assert isinstance(tools, list)
    first = tools[0]
    assert isinstance(first, dict)
    assert first["name"] == "git__status"

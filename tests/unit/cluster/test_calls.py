"""Placed model calls on the wire: every stream event survives the trip; bad input is named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.cluster.calls import (
    BadCall,
    CallEnd,
    CallRequest,
    decode_message,
    decode_request,
    encode_close,
    encode_error,
    encode_event,
)
from loomkin.core.chat import AssistantMessage, SystemMessage, ToolCall, UserMessage
from loomkin.errors import ProviderError, ProviderUnavailable, RateLimited
from loomkin.llm.model import (
    ModelRequest,
    RetryNotice,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)

REQUEST = ModelRequest(
    messages=(
        SystemMessage(text="you are ann"),
        UserMessage(text="append a line"),
        AssistantMessage(
            text="", tool_calls=(ToolCall(call_id="c1", name="shell", arguments='{"a":1}'),)
        ),
    ),
    tools=(ToolSchema(name="shell", description="run", parameters={"type": "object"}),),
    max_tokens=512,
    temperature=0.2,
    cache_key="agent_1",
)


def test_a_call_request_comes_back_whole() -> None:
    sent = CallRequest(
        call="call_1",
        session_id="s",
        agent_id="agent_1",
        epoch=7,
        agent="ann",
        role="coder",
        model="openai:gpt-4.1",
        project="/p",
        request=REQUEST,
    )
    got = decode_request(sent.to_bytes())
    assert got == sent


@pytest.mark.parametrize(
    "event",
    [
        TextDelta(text="héllo"),
        ToolCallDelta(index=1, call_id="x", name="shell", arguments_delta='{"c'),
        ToolCallDelta(index=0),
        UsageReport(input_tokens=10, output_tokens=2, cached_input_tokens=4, cache_write_tokens=1),
        StreamEnd(stop_reason="tool_calls"),
    ],
)
def test_every_stream_event_comes_back_equal(event: object) -> None:
    call, got = decode_message(encode_event("call_1", event))  # type: ignore[arg-type]
    assert (call, got) == ("call_1", event)


def test_a_retry_notice_keeps_its_error_kind() -> None:
    notice = RetryNotice(attempt=2, delay_s=1.5, error=RateLimited("slow down", status=429))
    _, got = decode_message(encode_event("c", notice))
    assert isinstance(got, RetryNotice)
    assert (got.attempt, got.delay_s) == (2, 1.5)
    assert isinstance(got.error, RateLimited)
    assert got.error.transient
    assert got.error.status == 429


def test_ends_carry_the_error_and_whether_the_worker_refused() -> None:
    assert decode_message(encode_close("c")) == ("c", CallEnd())
    _, refused = decode_message(encode_error("c", ProviderUnavailable("gone"), refused=True))
    assert isinstance(refused, CallEnd)
    assert refused.refused
    assert isinstance(refused.error, ProviderUnavailable)
    assert refused.error.transient
    _, failed = decode_message(encode_error("c", ValueError("bug in a model")))
    assert isinstance(failed, CallEnd)
    assert not failed.refused
    assert type(failed.error) is ProviderError
    assert str(failed.error) == "bug in a model"
    assert not failed.error.transient
    _, beat = decode_message(encode_event("c", "beat"))
    assert beat == "beat"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (json.dumps({"k": "text"}).encode(), "'call'"),
        (json.dumps({"k": "text", "call": "c", "text": 3}).encode(), "'text'"),
        (json.dumps({"k": "usage", "call": "c", "input_tokens": True}).encode(), "input_tokens"),
        (json.dumps({"k": "tool_call", "call": "c", "index": "0"}).encode(), "'index'"),
        (json.dumps({"k": "error", "call": "c", "error": "boom"}).encode(), "error"),
        (json.dumps({"k": "telepathy", "call": "c"}).encode(), "unknown kind"),
    ],
)
def test_a_bad_stream_message_is_named_not_half_read(data: bytes, named: str) -> None:
    with pytest.raises(BadCall, match=named):
        decode_message(data)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"call": "c"}, "'request'"),
        ({"call": "c", "request": {"messages": "hi", "tools": []}}, "lists"),
        ({"call": "c", "request": {"messages": [1], "tools": []}}, "message"),
        ({"call": 1, "request": {"messages": [], "tools": []}}, "'call'"),
        (
            {"call": "c", "request": {"messages": [], "tools": [], "max_tokens": "9"}},
            "max_tokens",
        ),
    ],
)
def test_a_bad_call_request_is_named(body: dict[str, object], named: str) -> None:
    with pytest.raises(BadCall, match=named):
        decode_request(json.dumps(body).encode())


@given(st.text(), st.integers(min_value=0, max_value=10**6))
def test_any_text_and_index_survive(text: str, index: int) -> None:
    event = ToolCallDelta(index=index, arguments_delta=text)
    assert decode_message(encode_event("c", event))[1] == event
    assert decode_message(encode_event("c", TextDelta(text=text)))[1] == TextDelta(text=text)

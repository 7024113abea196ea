"""Placed model calls on the wire: every stream event survives the trip; bad input is named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.cluster.calls import (
    PART_HEADER,
    BadCall,
    CallEnd,
    CallRequest,
    RequestParts,
    call_of,
    decode_message,
    decode_request,
    encode_close,
    encode_error,
    encode_event,
    split_event,
    split_request,
)
from loomkin.core.chat import AssistantMessage, SystemMessage, ToolCall, UserMessage
from loomkin.errors import ProviderError, ProviderUnavailable, RateLimited
from loomkin.llm.model import (
    ModelRequest,
    ResponseBuilder,
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
    assert not refused.stalled
    lost = encode_error("c", ProviderUnavailable("gone"), refused=True, stalled=True)
    _, stalled = decode_message(lost)
    assert isinstance(stalled, CallEnd)
    assert stalled.refused
    assert stalled.stalled
    assert isinstance(refused.error, ProviderUnavailable)
    assert refused.error.transient
    _, failed = decode_message(encode_error("c", ValueError("bug in a model")))
    assert isinstance(failed, CallEnd)
    assert not failed.refused
    assert type(failed.error) is ProviderError
    assert str(failed.error) == "bug in a model"
    assert not failed.error.transient


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


# -- requests and events larger than one NATS message ---------------------------------------


def test_a_request_that_fits_goes_as_one_message_without_headers() -> None:
    assert split_request(b"x" * 100, "c1", 64 * 1024) == [(b"x" * 100, None)]


@given(st.binary(min_size=2000, max_size=20_000), st.integers(1100, 3000))
def test_a_request_split_in_parts_is_joined_whole(data: bytes, max_payload: int) -> None:
    messages = split_request(data, "c1", max_payload)
    assert len(messages) > 1
    assert all(len(part) <= max_payload - 1024 for part, _ in messages)
    parts = RequestParts()
    joined = [parts.add(h[PART_HEADER], part, 0.0) for part, h in messages if h is not None]
    assert [whole for _, whole in joined[:-1]] == [None] * (len(messages) - 1)
    assert joined[-1] == ("c1", data)
    assert len(parts) == 0


def test_a_request_that_needs_too_many_parts_is_refused_by_name() -> None:
    with pytest.raises(BadCall, match="more than 256"):
        split_request(b"x" * (300 * 1000), "c1", 2024)


@pytest.mark.parametrize(
    "header", ["c1", "c1 x 2", "c1 0 1", "c1 2 2", "c1 0 100000", "c1 -1 2", "c1 0 2 extra"]
)
def test_a_malformed_part_header_is_a_bad_call(header: str) -> None:
    with pytest.raises(BadCall):
        RequestParts().add(header, b"x", 0.0)


def test_a_part_out_of_order_drops_the_request() -> None:
    parts = RequestParts()
    assert parts.add("c1 0 3", b"a", 0.0) == ("c1", None)
    with pytest.raises(BadCall, match="out of order"):
        parts.add("c1 2 3", b"c", 0.0)
    assert len(parts) == 0


def test_parts_of_a_sender_that_went_away_are_forgotten() -> None:
    parts = RequestParts()
    parts.add("c1 0 2", b"a", 1.0)
    parts.add("c2 0 2", b"a", 5.0)
    parts.drop_older_than(3.0)
    assert len(parts) == 1
    assert parts.add("c2 1 2", b"b", 6.0) == ("c2", b"ab")


@pytest.mark.parametrize("text", ["y" * 5000, "\u00e9\u0001" * 3000, "\U0001f600" * 2000])
def test_an_event_too_large_for_a_message_goes_as_deltas_that_build_the_same_answer(
    text: str,
) -> None:
    max_payload = 4096
    events = [
        TextDelta(text=text),
        ToolCallDelta(index=0, call_id="t1", name="write", arguments_delta=text),
        StreamEnd(stop_reason="tool_use"),
    ]
    pieces = [piece for event in events for piece in split_event(event, max_payload)]
    assert len(pieces) > len(events)
    assert all(len(encode_event("c1", piece)) <= max_payload for piece in pieces)
    whole, split = ResponseBuilder(), ResponseBuilder()
    for event in events:
        whole.add(event)
    for piece in pieces:
        split.add(decode_message(encode_event("c1", piece))[1])  # type: ignore[arg-type]
    assert split.build() == whole.build()


@pytest.mark.parametrize(
    ("data", "call"),
    [
        (b'{"call": "c7", "request": 3}', "c7"),
        (b'{"call": 7}', "?"),
        (b"[1, 2]", "?"),
        (b"\xff\xfe", "?"),
        (b"[" * 100_000, "?"),
    ],
)
def test_the_call_id_of_a_request_is_read_as_far_as_it_goes(data: bytes, call: str) -> None:
    assert call_of(data) == call

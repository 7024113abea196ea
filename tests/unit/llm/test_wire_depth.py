"""The depth guard on the SDKs' HTTP bodies: events and bodies nested past any real payload
are refused before the SDK's ``json.loads`` runs the interpreter to its recursion limit."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.llm.providers._depth import MAX_WIRE_DEPTH, WireTooDeep, guard_depth

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

DEEP = "[" * (MAX_WIRE_DEPTH + 1) + "]" * (MAX_WIRE_DEPTH + 1)
SHALLOW = "[" * MAX_WIRE_DEPTH + "]" * MAX_WIRE_DEPTH


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def read(body: bytes, cuts: list[int], content_type: str) -> list[bytes]:
    """Send ``body`` in pieces cut at ``cuts`` through the guard; return what got through."""
    edges = [0, *sorted(set(cuts)), len(body)]
    pieces = [body[a:b] for a, b in pairwise(edges) if b > a]

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, stream=Chunks(pieces))

    got: list[bytes] = []
    transport = httpx.MockTransport(handler)
    hooks = {"response": [guard_depth]}
    async with (
        httpx.AsyncClient(transport=transport, event_hooks=hooks) as client,
        client.stream("GET", "http://provider.test/") as response,
    ):
        got.extend([piece async for piece in response.aiter_raw()])
    return got


def events(*datas: str) -> bytes:
    return b"".join(f"event: x\ndata: {d}\n\n".encode() for d in datas)


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=30))
async def test_a_stream_of_shallow_events_passes_whole_however_it_is_cut(cuts: list[int]) -> None:
    body = events('{"a": [1, {"b": "[[[["}]}', SHALLOW, json.dumps({"text": "{" * 300}))
    got = await read(body, cuts, "text/event-stream")
    assert b"".join(got) == body


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=30), st.sampled_from("\n\r"))
async def test_a_deep_event_is_refused_before_its_last_byte_is_handed_on(
    cuts: list[int], newline: str
) -> None:
    body = events('{"a": 1}', DEEP, '{"never": "read"}').replace(b"\n", newline.encode())
    got: list[bytes] = []
    with pytest.raises(WireTooDeep, match=f"more than {MAX_WIRE_DEPTH} levels"):
        got = await read(body, cuts, "text/event-stream")
    assert b'"never"' not in b"".join(got)


async def test_an_event_spread_over_many_data_lines_is_measured_as_one() -> None:
    # The SDK joins an event's data lines before it parses them: one bracket per line is
    # still one deep document.
    lines = "".join(f"data: {c}\n" for c in DEEP)
    with pytest.raises(WireTooDeep):
        await read(f"event: x\n{lines}\n".encode(), [], "text/event-stream")


async def test_a_json_body_is_measured_whole_even_with_blank_lines_inside() -> None:
    pretty = "\n\n".join(DEEP)
    with pytest.raises(WireTooDeep):
        await read(pretty.encode(), [7, 300], "application/json")
    assert b"".join(await read(SHALLOW.encode(), [5], "application/json")) == SHALLOW.encode()

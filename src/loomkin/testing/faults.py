r"""A catalogue of malformed model answers, for fuzzing the agent loop and the adapters.

How this works and why:

* Each *fault kind* is a function of a seeded :class:`random.Random` that returns one model
  answer: a :data:`~loomkin.testing.models.ScriptStep` for a fake model (:data:`LOOP_FAULTS`,
  driven through the real agent loop), or a :data:`~loomkin.testing.wire.WireReply` a local
  server sends to the real ``openai`` (:data:`OPENAI_FAULTS`) or ``anthropic``
  (:data:`ANTHROPIC_FAULTS`) SDK. The kinds are what was seen to crash or hang an agent:
  arguments nested 100,000 deep, integers of 50,000 digits, ``NaN``, lone surrogates,
  duplicate or missing call ids, odd tool names, exceptions mid-stream, server-sent events
  that are not JSON or not UTF-8, streams of keep-alives only, connections cut mid-event.
* A few kinds are well-formed answers (a final text, a valid tool call) so the fuzzed agents
  keep going for several iterations and transcripts mix good and bad turns.
* :func:`pick` chooses a kind with the weights in :data:`WEIGHTS` (final answers are rare, so
  a loop lasts). Everything depends on the ``Random`` only: a seed reproduces a run.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from loomkin.errors import ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited
from loomkin.llm.model import StreamEnd, TextDelta, ToolCallDelta, UsageReport
from loomkin.testing.models import Call, Fail, Raw, Reply, ScriptStep, Stall
from loomkin.testing.wire import SSE, JSONReply, KeepAlive, Part, StreamReply, Wait

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Mapping

    from loomkin.testing.wire import WireReply

__all__ = [
    "ANTHROPIC_FAULTS",
    "LOOP_FAULTS",
    "OPENAI_FAULTS",
    "WEIGHTS",
    "pick",
]

_WORDS = ("alpha", "beta", "parser", "cache", "README", "check", "done", "file", "note")


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))


def _deep(rng: random.Random) -> str:
    depth = rng.choice((65, 200, 900, 5_000, 100_000))
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _huge_int(rng: random.Random) -> str:
    return str(rng.randint(1, 9)) + "7" * rng.choice((4_300, 5_000, 20_000, 50_000))


def _nan(rng: random.Random) -> str:
    return rng.choice(("NaN", "Infinity", "-Infinity", "1e999", "-1e400"))


def _non_object(rng: random.Random) -> str:
    return rng.choice(('["README.md"]', '"README.md"', "42", "null", "true", "[]", "{}x"))


def _odd_name(rng: random.Random) -> str:
    return rng.choice(("", " ", "read file", "fïle_read", "x" * 300, "file_read\n", "a;rm -rf /"))


def _surrogate_args(rng: random.Random) -> str:
    return rng.choice(('{"path": "\\ud800"}', '{"path": "x\\udfffy"}', '{"\\udc00": 1}'))


def _bad_arguments(rng: random.Random) -> str:
    """Arguments text of any of the bad sorts (for the wire, where one kind carries many)."""
    return rng.choice(
        (
            '{"path": ' + _deep(rng) + "}",
            '{"path": ' + _huge_int(rng) + "}",
            '{"path": ' + _nan(rng) + "}",
            _non_object(rng),
            _surrogate_args(rng),
            '{"path": "README.md"',
        )
    )


def _exception(rng: random.Random) -> Exception:
    return rng.choice(
        (
            RuntimeError("a bug in the model adapter"),
            ValueError("bad value"),
            KeyError("choices"),
            json.JSONDecodeError("Expecting value", "data: {", 7),
            UnicodeDecodeError("utf-8", b"\xff\xfe", 0, 1, "invalid start byte"),
            RecursionError("maximum recursion depth exceeded while decoding a JSON array"),
            ZeroDivisionError("division by zero"),
            AttributeError("'NoneType' object has no attribute 'delta'"),
        )
    )


def _read(path: str = "README.md", call_id: str | None = None) -> Call:
    return Call("file_read", {"path": path}, call_id=call_id)


def _mistyped(rng: random.Random) -> Raw:
    bad: list[object] = [
        TextDelta(text=rng.choice((42, None, b"bytes", ["a"]))),  # type: ignore[arg-type]
        ToolCallDelta(index=rng.choice(("x", None, 1.5)), name="file_read"),  # type: ignore[arg-type]
        ToolCallDelta(index=0, name=42),  # type: ignore[arg-type]
        ToolCallDelta(index=0, name="file_read", arguments_delta=None),  # type: ignore[arg-type]
        UsageReport(input_tokens=-5, output_tokens=0),
        UsageReport(input_tokens="12", output_tokens=1),  # type: ignore[arg-type]
        StreamEnd(stop_reason=None),  # type: ignore[arg-type]
        "not an event",
    ]
    return Raw(events=[TextDelta(text="partly "), rng.choice(bad), StreamEnd(stop_reason="stop")])


def _fn_raises(rng: random.Random) -> ScriptStep:
    raise _exception(rng)


def _cancelled(_rng: random.Random) -> ScriptStep:
    return Reply(text="half", fail_after=asyncio.CancelledError())  # type: ignore[arg-type]


LOOP_FAULTS: Mapping[str, Callable[[random.Random], ScriptStep]] = {
    "final_text": lambda r: Reply(text=_text(r)),
    "valid_call": lambda r: Reply(text=_text(r), tool_calls=[_read()]),
    "invalid_json": lambda r: Reply(tool_calls=[Call("file_read", '{"path": "README.md"')]),
    "deep_args": lambda r: Reply(tool_calls=[Call("file_read", '{"path": ' + _deep(r) + "}")]),
    "huge_int": lambda r: Reply(tool_calls=[Call("file_read", '{"limit": ' + _huge_int(r) + "}")]),
    "nan_args": lambda r: Reply(tool_calls=[Call("file_read", '{"limit": ' + _nan(r) + "}")]),
    "huge_args": lambda r: Reply(
        tool_calls=[Call("file_read", {"path": "x" * r.choice((65_536, 300_000))})]
    ),
    "non_object": lambda r: Reply(tool_calls=[Call("file_read", _non_object(r))]),
    "surrogate_args": lambda r: Reply(tool_calls=[Call("file_read", _surrogate_args(r))]),
    "surrogate_text": lambda r: Reply(text="bad \ud800 text", tool_calls=[_read()]),
    "nul_path": lambda r: Reply(tool_calls=[Call("file_read", {"path": "a\x00b"})]),
    "wrong_schema": lambda r: Reply(tool_calls=[Call("file_read", {"path": 42, "bogus": True})]),
    "duplicate_ids": lambda r: Reply(
        tool_calls=[_read(call_id="same") for _ in range(r.randint(2, 6))]
    ),
    "missing_ids": lambda r: Reply(tool_calls=[_read(call_id=""), _read("app.py", call_id="")]),
    "odd_names": lambda r: Reply(tool_calls=[Call(_odd_name(r), {"path": "README.md"})]),
    "unknown_tool": lambda r: Reply(tool_calls=[Call("delete_everything", {})]),
    "many_calls": lambda r: Reply(tool_calls=[_read() for _ in range(r.randint(20, 80))]),
    "empty_answer": lambda r: Reply(),
    "blank_answer": lambda r: Reply(text=r.choice((" ", "\n\n", "\t \n"))),
    "length_cut": lambda r: Reply(
        tool_calls=[Call("file_read", '{"path": "REA')], stop_reason="length"
    ),
    "error_mid_stream": lambda r: Reply(
        text=_text(r), tool_calls=[_read()], fail_after=_exception(r)
    ),
    "cancelled_mid_stream": _cancelled,
    "error_before_stream": lambda r: Fail(_exception(r)),
    "fn_raises": _fn_raises,
    "provider_transient": lambda r: Fail(
        r.choice(
            (
                RateLimited("HTTP 429: slow down"),
                ProviderUnavailable("HTTP 503: busy", status=503),
                ProviderTimeout("no answer within 120 s"),
            )
        )
    ),
    "provider_permanent": lambda r: Fail(ProviderError("HTTP 400: invalid request", status=400)),
    "stall": lambda r: Stall(),
    "mistyped_events": _mistyped,
    "no_end": lambda r: Raw(events=[TextDelta(text=_text(r))]),
    "events_after_end": lambda r: Raw(
        events=[TextDelta(text="a"), StreamEnd(stop_reason="stop"), TextDelta(text="late")]
    ),
}
"""Fault kinds for a fake model driven through the real agent loop."""


# -- OpenAI's wire ----------------------------------------------------------------------------


def _chunk(delta: Mapping[str, object], finish: str | None = None) -> SSE:
    return SSE(json.dumps(_chunk_body(delta, finish)))


def _chunk_body(delta: Mapping[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-fuzz",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fuzz",
        "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
    }


_OPENAI_DONE = SSE("[DONE]")


def _openai_text(text: str) -> tuple[Part, ...]:
    return (
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": text}),
        _chunk({}, "stop"),
        _OPENAI_DONE,
    )


def _openai_calls(
    calls: list[tuple[str | None, str | None, str]], *, pieces: int = 1
) -> tuple[Part, ...]:
    """Tool calls ``(id, name, arguments)``; the arguments streamed in ``pieces`` chunks."""
    parts: list[Part] = [_chunk({"role": "assistant", "content": None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        head: dict[str, object] = {
            "index": index,
            "type": "function",
            "function": {"arguments": ""},
        }
        if call_id is not None:
            head["id"] = call_id
        if name is not None:
            head["function"] = {"name": name, "arguments": ""}
        parts.append(_chunk({"tool_calls": [head]}))
        size = max(1, -(-len(arguments) // pieces))
        for start in range(0, len(arguments), size):
            piece = arguments[start : start + size]
            parts.append(
                _chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    parts += [_chunk({}, "tool_calls"), _OPENAI_DONE]
    return tuple(parts)


def _stream(*parts: Part) -> StreamReply:
    return StreamReply(parts=parts)


def _openai_mistyped(rng: random.Random) -> StreamReply:
    bodies: list[object] = [
        {"id": "c", "choices": "x"},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": 5}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": {"a": 1}}}]},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": "x", "completion_tokens": 1}},
        {"id": "c", "choices": [], "usage": {"prompt_tokens": -3, "completion_tokens": 1}},
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": 7}]},
        [1, 2, 3],
        "just a string",
        None,
    ]
    body = rng.choice(bodies)
    return _stream(
        _chunk({"content": "a"}), SSE(json.dumps(body)), _chunk({}, "stop"), _OPENAI_DONE
    )


def _openai_bad_index(rng: random.Random) -> StreamReply:
    index = rng.choice(("x", None, -1, 1.5, 10**30, True))
    call = {"index": index, "id": "c1", "function": {"name": "file_read", "arguments": "{}"}}
    return _stream(_chunk({"tool_calls": [call]}), _chunk({}, "tool_calls"), _OPENAI_DONE)


def _first_or_later(rng: random.Random, fault: Part) -> StreamReply:
    if rng.random() < 0.5:
        return _stream(fault, *_openai_text("never read"))
    return _stream(_chunk({"role": "assistant", "content": ""}), _chunk({"content": "half"}), fault)


def _error(status: int, message: str) -> JSONReply:
    return JSONReply(status=status, body={"error": {"message": message, "type": "fuzz"}})


OPENAI_FAULTS: Mapping[str, Callable[[random.Random], WireReply]] = {
    "final_text": lambda r: _stream(*_openai_text(_text(r))),
    "valid_call": lambda r: _stream(*_openai_calls([("c1", "file_read", '{"path": "README.md"}')])),
    "keepalives_then_answer": lambda r: _stream(
        KeepAlive(every_s=10.0, count=r.randint(1, 5)), *_openai_text(_text(r))
    ),
    "broken_sse_line": lambda r: _first_or_later(r, b'data: {"id": "chatcmpl-fuzz", "choi\n\n'),
    "non_utf8": lambda r: _first_or_later(r, b'data: {"id": "\xff\xfe\xfd"}\n\n'),
    "keepalive_only": lambda r: _stream(KeepAlive(every_s=10.0)),
    "silent_after_headers": lambda r: _stream(Wait(None)),
    "deep_chunk": lambda r: _first_or_later(
        r, SSE('{"choices": ' + "[" * 50_000 + "]" * 50_000 + "}")
    ),
    "huge_args": lambda r: _stream(
        *_openai_calls(
            [("c1", "file_read", json.dumps({"path": "y" * 200_000}))], pieces=r.randint(1, 40)
        )
    ),
    "bad_args": lambda r: _stream(
        *_openai_calls([("c1", "file_read", _bad_arguments(r))], pieces=r.randint(1, 5))
    ),
    "duplicate_ids": lambda r: _stream(
        *_openai_calls([("dup", "file_read", '{"path": "README.md"}')] * r.randint(2, 5))
    ),
    "missing_ids": lambda r: _stream(*_openai_calls([(None, "file_read", '{"path": "app.py"}')])),
    "missing_name": lambda r: _stream(*_openai_calls([("c1", None, '{"path": "app.py"}')])),
    "odd_names": lambda r: _stream(*_openai_calls([("c1", _odd_name(r), "{}")])),
    "bad_index": _openai_bad_index,
    "mistyped_fields": _openai_mistyped,
    "no_finish": lambda r: _stream(_chunk({"content": _text(r)}), _OPENAI_DONE),
    "cut_mid_event": lambda r: _stream(_chunk({"content": "a"}), b'data: {"id": "chatcmpl'),
    "error_event": lambda r: _first_or_later(
        r, SSE(json.dumps({"error": {"message": "overloaded"}}))
    ),
    "http_429": lambda r: _error(429, "rate limited"),
    "http_500": lambda r: _error(500, "internal error"),
    "http_400": lambda r: _error(400, "invalid request"),
    "html_body": lambda r: StreamReply(
        parts=(b"<html><body>502 Bad Gateway</body></html>",),
        status=r.choice((200, 502)),
        content_type="text/html",
    ),
    "only_done": lambda r: _stream(_OPENAI_DONE),
    "surrogate_text": lambda r: _stream(
        SSE(json.dumps(_chunk_body({"content": "x"})).replace('"x"', '"x\\ud800y"')),
        _chunk({}, "stop"),
        _OPENAI_DONE,
    ),
    "empty_answer": lambda r: _stream(
        _chunk({"role": "assistant", "content": ""}), _chunk({}, "stop")
    ),
}
"""Fault kinds a server sends to the ``openai`` SDK (the stream or the HTTP answer)."""


# -- Anthropic's wire -------------------------------------------------------------------------


def _ev(data: dict[str, object]) -> SSE:
    return SSE(json.dumps(data), event=str(data["type"]))


def _anthropic_start() -> SSE:
    message: dict[str, object] = {
        "id": "msg_fuzz",
        "type": "message",
        "role": "assistant",
        "model": "claude-fuzz",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    return _ev({"type": "message_start", "message": message})


def _anthropic_end(stop_reason: str) -> tuple[Part, ...]:
    return (
        _ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason},
                "usage": {"output_tokens": 5},
            }
        ),
        _ev({"type": "message_stop"}),
    )


def _anthropic_text(text: str) -> tuple[Part, ...]:
    return (
        _anthropic_start(),
        _ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        _ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }
        ),
        _ev({"type": "content_block_stop", "index": 0}),
        *_anthropic_end("end_turn"),
    )


def _anthropic_calls(calls: list[tuple[str, str]]) -> tuple[Part, ...]:
    """Tool uses ``(id, arguments)`` of ``file_read``."""
    parts: list[Part] = [_anthropic_start()]
    for index, (call_id, arguments) in enumerate(calls):
        block = {"type": "tool_use", "id": call_id, "name": "file_read", "input": {}}
        parts.append(_ev({"type": "content_block_start", "index": index, "content_block": block}))
        delta = {"type": "input_json_delta", "partial_json": arguments}
        parts.append(_ev({"type": "content_block_delta", "index": index, "delta": delta}))
        parts.append(_ev({"type": "content_block_stop", "index": index}))
    return (*parts, *_anthropic_end("tool_use"))


def _anthropic_first_or_later(rng: random.Random, fault: Part) -> StreamReply:
    if rng.random() < 0.5:
        return _stream(fault, *_anthropic_text("never read"))
    return _stream(_anthropic_start(), fault)


ANTHROPIC_FAULTS: Mapping[str, Callable[[random.Random], WireReply]] = {
    "final_text": lambda r: _stream(*_anthropic_text(_text(r))),
    "valid_call": lambda r: _stream(*_anthropic_calls([("toolu_1", '{"path": "README.md"}')])),
    "broken_sse_line": lambda r: _anthropic_first_or_later(
        r, b'event: content_block_delta\ndata: {"type": "content_bl\n\n'
    ),
    "non_utf8": lambda r: _anthropic_first_or_later(r, b'event: ping\ndata: {"x": "\xff"}\n\n'),
    "keepalive_only": lambda r: _stream(KeepAlive(every_s=10.0)),
    "deep_chunk": lambda r: _anthropic_first_or_later(
        r, SSE('{"type": ' + "[" * 50_000 + "]" * 50_000 + "}", event="content_block_delta")
    ),
    "error_event": lambda r: _anthropic_first_or_later(
        r,
        _ev({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ),
    "bad_args": lambda r: _stream(*_anthropic_calls([("toolu_1", _bad_arguments(r))])),
    "duplicate_ids": lambda r: _stream(*_anthropic_calls([("toolu_dup", "{}")] * r.randint(2, 4))),
    "cut_mid_event": lambda r: _stream(_anthropic_start(), b"event: content_block_start\ndata: {"),
    "unknown_event": lambda r: _stream(
        _ev({"type": "something_new", "index": 0}), *_anthropic_text("still fine")
    ),
    "http_529": lambda r: JSONReply(
        status=529, body={"type": "error", "error": {"type": "overloaded_error", "message": "x"}}
    ),
}
"""Fault kinds a server sends to the ``anthropic`` SDK."""


WEIGHTS: Mapping[str, float] = {"final_text": 0.3, "valid_call": 2.0}
"""Relative weight of a kind (1 when not listed): a final answer ends the loop, so it is rare."""


def pick(kinds: Mapping[str, object], rng: random.Random) -> str:
    """Choose a fault kind of ``kinds`` with :data:`WEIGHTS`."""
    names = sorted(kinds)
    return rng.choices(names, weights=[WEIGHTS.get(n, 1.0) for n in names])[0]

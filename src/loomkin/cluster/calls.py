"""The wire format of model calls placed on another worker: requests and stream messages.

A session's host sends one JSON message per model call to the worker that holds the agent
(:mod:`loomkin.cluster.agents`), and that worker answers on the call's own inbox with one
JSON message per stream event and a last ``close`` or ``error``
(:mod:`loomkin.cluster.executor`). There are no keep-alive messages: while a call is silent
the host checks that the agent's lease still names its worker. Both sides decode with the
functions here, which check every field: a message that does not match is a
:class:`BadCall`, never a crash and never half of an event.

A NATS message holds at most the server's ``max_payload`` (1 MB by default), and a long-running
agent's transcript, sent whole with every call, outgrows it. A request that does is sent in
parts (:func:`split_request`: each message names its call, its index and the count in the
``Loomkin-Part`` header) that the worker joins (:class:`RequestParts`); one subscriber gets
one publisher's messages in order. A stream event too large for one message (a tool call's
arguments sent in one piece) goes as several deltas of the same call (:func:`split_event`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from loomkin.core.chat import message_from_json
from loomkin.errors import (
    MissingCredentials,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UserError,
)
from loomkin.llm.model import (
    ModelRequest,
    RetryNotice,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON

__all__ = [
    "PART_HEADER",
    "BadCall",
    "CallEnd",
    "CallRequest",
    "RequestParts",
    "call_of",
    "decode_message",
    "decode_request",
    "encode_close",
    "encode_error",
    "encode_event",
    "split_event",
    "split_request",
]

PART_HEADER = "Loomkin-Part"
"""Header of one part of a request sent in several messages: ``<call> <index> <count>``."""
_HEADROOM = 1024
"""Bytes of a message left for the subject, the reply inbox and the headers."""
_MAX_PARTS = 256
"""The most parts a worker joins for one request (256 MB at the default payload limit)."""


class BadCall(UserError):
    """A placed call's request or stream message is not what the wire format says."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRequest:
    """One model call for an agent held by the worker it is sent to."""

    call: str
    """The host's id of this call (its messages carry it; a cancel names it)."""
    session_id: str
    agent_id: str
    epoch: int
    """The agent's lease epoch the host placed it under (a stale one is refused)."""
    agent: str
    """The agent's name (the worker builds its model from the role and the name)."""
    role: str
    model: str
    """``provider:model`` as the host's model is named."""
    project: str
    """The project's directory (its ``loomkin.toml`` gives the model's endpoint)."""
    request: ModelRequest

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "call": self.call,
                "session_id": self.session_id,
                "agent_id": self.agent_id,
                "epoch": self.epoch,
                "agent": self.agent,
                "role": self.role,
                "model": self.model,
                "project": self.project,
                "request": self.request.to_json(),
            }
        ).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnd:
    """The last message of a call: the stream ended (``error`` is ``None``) or failed."""

    error: ProviderError | None = None
    refused: bool = False
    """The worker does not hold the agent under that epoch: the host places it again."""
    stalled: bool = False
    """Refused because the worker lost the agent's lease or could not renew it (the host
    does not choose it again for a while); else it only gave the agent back."""


Message = StreamEvent | CallEnd
"""What one message on a call's inbox says."""


def decode_request(data: bytes) -> CallRequest:
    """Read a call request.

    Raises:
        BadCall: it is not JSON, or a field is missing or of the wrong type.
    """
    body = _object(data, "call request")
    raw = body.get("request")
    if not isinstance(raw, dict):
        raise BadCall("call request: 'request' must be an object")
    messages = raw.get("messages")
    tools = raw.get("tools", [])
    if not isinstance(messages, list) or not isinstance(tools, list):
        raise BadCall("call request: 'messages' and 'tools' must be lists")
    try:
        request = ModelRequest(
            messages=tuple(message_from_json(_dict(m, "message")) for m in messages),
            tools=tuple(_tool(_dict(t, "tool")) for t in tools),
            max_tokens=_opt_int(raw.get("max_tokens"), "max_tokens"),
            temperature=_opt_float(raw.get("temperature"), "temperature"),
            cache_key=_opt_str(raw.get("cache_key"), "cache_key"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadCall(f"call request: {exc}") from exc
    return CallRequest(
        call=_str(body, "call"),
        session_id=_str(body, "session_id"),
        agent_id=_str(body, "agent_id"),
        epoch=_int(body, "epoch"),
        agent=_str(body, "agent"),
        role=_str(body, "role"),
        model=_str(body, "model"),
        project=_str(body, "project"),
        request=request,
    )


def split_request(
    data: bytes, call: str, max_payload: int
) -> list[tuple[bytes, dict[str, str] | None]]:
    """The messages that carry request ``data``: itself, or its parts with their headers.

    Raises:
        BadCall: it needs more than a worker joins (``_MAX_PARTS`` messages).
    """
    size = max(1, max_payload - _HEADROOM)
    if len(data) <= size:
        return [(data, None)]
    count = -(-len(data) // size)
    if count > _MAX_PARTS:
        raise BadCall(
            f"call {call}: a request of {len(data)} bytes needs {count} messages of the NATS "
            f"server's {max_payload} bytes, more than {_MAX_PARTS}"
        )
    return [
        (data[i * size : (i + 1) * size], {PART_HEADER: f"{call} {i} {count}"})
        for i in range(count)
    ]


class RequestParts:
    """Joins the parts of requests sent in several messages (a worker's side)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[int, list[bytes], float]] = {}

    def __len__(self) -> int:
        return len(self._open)

    def add(self, header: str, data: bytes, now: float) -> tuple[str, bytes | None]:
        """Take one part: ``(call id, the whole request once its last part came, else None)``.

        Raises:
            BadCall: the header is malformed, or a part came out of order (the request is
                dropped: its sender hears of it and sends it again).
        """
        fields = header.split(" ")
        if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit():
            raise BadCall(f"{PART_HEADER} {header!r} is not '<call> <index> <count>'")
        call, index, count = fields[0], int(fields[1]), int(fields[2])
        if not 2 <= count <= _MAX_PARTS or index >= count:
            self._open.pop(call, None)
            raise BadCall(f"{PART_HEADER} {header!r}: part {index} of {count} parts")
        expected, parts, _ = self._open.get(call, (count, [], now))
        if expected != count or index != len(parts):
            self._open.pop(call, None)
            raise BadCall(f"call {call}: part {index} of {count} came out of order")
        parts.append(data)
        if len(parts) < count:
            self._open[call] = (count, parts, now)
            return call, None
        self._open.pop(call, None)
        return call, b"".join(parts)

    def drop_older_than(self, when: float) -> None:
        """Forget requests whose last part came before ``when`` (their sender is gone)."""
        for call, (_, _, last) in list(self._open.items()):
            if last < when:
                del self._open[call]


def split_event(event: StreamEvent, max_payload: int) -> list[StreamEvent]:
    """``event`` as deltas that each fit in one message of ``max_payload`` bytes."""
    # A character takes at most 12 bytes in JSON (one outside the BMP: a surrogate pair).
    most = max(1, (max_payload - _HEADROOM) // 12)
    match event:
        case TextDelta(text=text) if len(text) > most:
            return [TextDelta(text=text[i : i + most]) for i in range(0, len(text), most)]
        case ToolCallDelta(arguments_delta=delta) if len(delta) > most:
            first = replace(event, arguments_delta=delta[:most])
            rest = [
                ToolCallDelta(index=event.index, arguments_delta=delta[i : i + most])
                for i in range(most, len(delta), most)
            ]
            return [first, *rest]
    return [event]


def call_of(data: bytes) -> str:
    """The call id a request names, read as far as it can be (``?``: none).

    A worker answers a request it cannot read under that id: its host drops every message
    of another call, and would wait for this one until the loop's idle timeout.
    """
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "?"
    call = body.get("call") if isinstance(body, dict) else None
    return call if isinstance(call, str) else "?"


def encode_event(call: str, event: StreamEvent) -> bytes:
    """One message of call ``call``'s stream."""
    body: dict[str, JSON]
    match event:
        case TextDelta(text=text):
            body = {"k": "text", "text": text}
        case ToolCallDelta():
            body = {
                "k": "tool_call",
                "index": event.index,
                "call_id": event.call_id,
                "name": event.name,
                "arguments_delta": event.arguments_delta,
            }
        case UsageReport():
            body = {
                "k": "usage",
                "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
                "cached_input_tokens": event.cached_input_tokens,
                "cache_write_tokens": event.cache_write_tokens,
            }
        case StreamEnd(stop_reason=stop_reason):
            body = {"k": "end", "stop_reason": stop_reason}
        case RetryNotice():
            body = {
                "k": "retry",
                "attempt": event.attempt,
                "delay_s": event.delay_s,
                "error": _error_json(event.error),
            }
    body["call"] = call
    return json.dumps(body).encode()


def encode_close(call: str) -> bytes:
    """The last message of a call whose stream ended."""
    return json.dumps({"k": "close", "call": call}).encode()


def encode_error(
    call: str, error: BaseException, *, refused: bool = False, stalled: bool = False
) -> bytes:
    """The last message of a call that failed.

    ``refused``: the worker does not hold the agent; ``stalled``: because its lease was lost
    or not renewed.
    """
    provider = error if isinstance(error, ProviderError) else ProviderError(str(error))
    body: dict[str, JSON] = {"k": "error", "call": call, "error": _error_json(provider)}
    if refused:
        body["refused"] = True
    if stalled:
        body["stalled"] = True
    return json.dumps(body).encode()


def decode_message(data: bytes) -> tuple[str, Message]:
    """Read one message of a call's stream: ``(call id, what it says)``.

    Raises:
        BadCall: it is not JSON, or a field is missing or of the wrong type.
    """
    body = _object(data, "stream message")
    call = _str(body, "call")
    kind = _str(body, "k")
    try:
        match kind:
            case "text":
                return call, TextDelta(text=_str(body, "text"))
            case "tool_call":
                return call, ToolCallDelta(
                    index=_int(body, "index"),
                    call_id=_opt_str(body.get("call_id"), "call_id"),
                    name=_opt_str(body.get("name"), "name"),
                    arguments_delta=_str(body, "arguments_delta"),
                )
            case "usage":
                return call, UsageReport(
                    input_tokens=_int(body, "input_tokens"),
                    output_tokens=_int(body, "output_tokens"),
                    cached_input_tokens=_int(body, "cached_input_tokens"),
                    cache_write_tokens=_int(body, "cache_write_tokens"),
                )
            case "end":
                return call, StreamEnd(stop_reason=_str(body, "stop_reason"))
            case "retry":
                return call, RetryNotice(
                    attempt=_int(body, "attempt"),
                    delay_s=_float(body, "delay_s"),
                    error=_error(_dict(body.get("error"), "error")),
                )
            case "close":
                return call, CallEnd()
            case "error":
                refused = body.get("refused") is True
                stalled = refused and body.get("stalled") is True
                error = _error(_dict(body.get("error"), "error"))
                return call, CallEnd(error=error, refused=refused, stalled=stalled)
    except (KeyError, TypeError) as exc:
        raise BadCall(f"stream message {kind!r}: {exc}") from exc
    raise BadCall(f"stream message of unknown kind {kind!r}")


_ERRORS: dict[str, type[ProviderError]] = {
    "RateLimited": RateLimited,
    "ProviderTimeout": ProviderTimeout,
    "ProviderUnavailable": ProviderUnavailable,
    "MissingCredentials": MissingCredentials,
}


def _error_json(error: ProviderError) -> dict[str, JSON]:
    return {
        "type": type(error).__name__,
        "message": str(error),
        "transient": error.transient,
        "status": error.status,
    }


def _error(body: dict[str, JSON]) -> ProviderError:
    message = _str(body, "message")
    status = _opt_int(body.get("status"), "status")
    match _ERRORS.get(_str(body, "type")):
        case None:
            return ProviderError(message, transient=body.get("transient") is True, status=status)
        case cls if cls is RateLimited or cls is ProviderUnavailable:
            return cls(message, status=status)
        case cls:
            return cls(message)


def _tool(body: dict[str, JSON]) -> ToolSchema:
    return ToolSchema(
        name=_str(body, "name"),
        description=_str(body, "description"),
        parameters=_dict(body.get("parameters"), "parameters"),
    )


def _object(data: bytes, what: str) -> dict[str, JSON]:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCall(f"{what} is not JSON: {exc}") from exc
    return _dict(body, what)


def _dict(value: object, what: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise BadCall(f"{what} must be a JSON object")
    return value


def _str(body: dict[str, JSON], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadCall(f"{key!r} must be a string")
    return value


def _int(body: dict[str, JSON], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadCall(f"{key!r} must be an integer")
    return value


def _float(body: dict[str, JSON], key: str) -> float:
    value = body.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadCall(f"{key!r} must be a number")
    return float(value)


def _opt_str(value: object, key: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadCall(f"{key!r} must be a string or null")
    return value


def _opt_int(value: object, key: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise BadCall(f"{key!r} must be an integer or null")
    return value


def _opt_float(value: object, key: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadCall(f"{key!r} must be a number or null")
    return float(value)

"""A tiny local HTTP server that speaks a provider's wire format, for adapter tests.

How this works and why:

* Adapter tests drive the real ``openai`` / ``anthropic`` SDKs, so they need a real HTTP
  server. :class:`WireServer` listens on ``127.0.0.1`` (an ephemeral port), reads each
  HTTP/1.1 request, records it in :attr:`WireServer.requests` and answers with the next
  scripted :data:`WireReply`, or whatever a handler function returns for the request.
* Replies are JSON (any status, any headers), a server-sent-event stream, a
  :class:`StreamReply` written part by part (events, raw bytes such as a broken line or
  bytes that are not UTF-8, pauses, keep-alives: what a misbehaving server sends), or
  :class:`Hang` (never answer: the client's timeout fires). Every response closes the
  connection (``Connection: close``) so framing stays trivial.
* An :class:`SSEReply` with ``hold_open`` sends its events and then waits for the client
  to hang up; :meth:`WireServer.wait_disconnect` tells a test the client really closed
  the stream (what an abandoned model stream must do).
* The server owns its connection tasks and cancels and awaits them on exit.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Self, assert_never

from loomkin.core.events.base import JSON

__all__ = [
    "SSE",
    "Hang",
    "JSONReply",
    "KeepAlive",
    "Part",
    "SSEReply",
    "StreamReply",
    "Wait",
    "WireHandler",
    "WireReply",
    "WireRequest",
    "WireServer",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class WireRequest:
    """One HTTP request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def json(self) -> JSON:
        """Return the body parsed as JSON."""
        value: JSON = json.loads(self.body)
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class JSONReply:
    """Answer with a JSON body."""

    body: JSON
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SSE:
    """One server-sent event (``event:`` line optional)."""

    data: str
    event: str | None = None

    def encode(self) -> bytes:
        """Return the event as it goes on the wire."""
        head = f"event: {self.event}\n" if self.event else ""
        return f"{head}data: {self.data}\n\n".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class SSEReply:
    """Answer with a ``text/event-stream``."""

    events: tuple[SSE, ...]
    hold_open: bool = False
    """Keep the connection open after the events until the client hangs up."""


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer (until the server shuts down)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Send nothing for ``seconds`` (``None``: until the client hangs up)."""

    seconds: float | None


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """Send an SSE comment line (``: keep-alive``) every ``every_s`` seconds.

    ``count`` times, or (``None``) until the client hangs up: a provider that is alive but
    never answers.
    """

    every_s: float = 15.0
    count: int | None = None


Part = SSE | bytes | Wait | KeepAlive
"""One piece of a :class:`StreamReply`: an event, raw bytes (a broken line, bytes that are
not UTF-8, half an event), a pause, or keep-alives."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReply:
    """Answer with a body written part by part, then close the connection.

    What a misbehaving server sends: events mixed with raw bytes, pauses and keep-alives.
    Closing before the stream's end (no ``[DONE]``, half an event) is a cut connection.
    """

    parts: tuple[Part, ...]
    status: int = 200
    content_type: str = "text/event-stream"


WireReply = JSONReply | SSEReply | StreamReply | Hang
WireHandler = Callable[[WireRequest], WireReply]


@dataclass(slots=True)
class _State:
    replies: deque[WireReply] = field(default_factory=deque)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


class WireServer:
    """A scripted HTTP server on 127.0.0.1; use as ``async with WireServer() as server``.

    Args:
        handler: Computes the reply for each request; when ``None`` the replies queued
            with :meth:`reply` are served in order.
    """

    def __init__(self, handler: WireHandler | None = None) -> None:
        self._handler = handler
        self._state = _State()
        self._server: asyncio.Server | None = None
        self.requests: list[WireRequest] = []
        """Every request received, in order."""

    def reply(self, *replies: WireReply) -> None:
        """Queue ``replies`` to be served in order."""
        self._state.replies.extend(replies)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None, "the server is not running"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def wait_disconnect(self) -> None:
        """Wait until a client hangs up on a held-open stream."""
        await self._state.disconnected.wait()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._state.writers):
            writer.close()
        for task in list(self._state.tasks):
            task.cancel()
        await asyncio.gather(*self._state.tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._state.tasks.add(task)
        self._state.writers.add(writer)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            self.requests.append(request)
            await self._answer(self._next_reply(request), reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        finally:
            self._state.tasks.discard(task)
            self._state.writers.discard(writer)
            writer.close()

    def _next_reply(self, request: WireRequest) -> WireReply:
        if self._handler is not None:
            return self._handler(request)
        if not self._state.replies:
            return JSONReply(status=500, body={"error": {"message": "WireServer: no reply queued"}})
        return self._state.replies.popleft()

    async def _answer(
        self, reply: WireReply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        match reply:
            case JSONReply(body=body, status=status, headers=headers):
                data = json.dumps(body).encode()
                head = _head(status, [("Content-Type", "application/json"), *headers], len(data))
                writer.write(head + data)
                await writer.drain()
            case SSEReply(events=events, hold_open=hold_open):
                writer.write(_head(200, [("Content-Type", "text/event-stream")], None))
                writer.write(b"".join(event.encode() for event in events))
                await writer.drain()
                if hold_open:
                    await reader.read()  # returns b"" when the client hangs up
                    self._state.disconnected.set()
            case StreamReply(parts=parts, status=status, content_type=content_type):
                writer.write(_head(status, [("Content-Type", content_type)], None))
                for part in parts:
                    await _write_part(part, writer)
                await writer.drain()
            case Hang():
                await asyncio.Event().wait()
            case _:
                assert_never(reply)


async def _write_part(part: Part, writer: asyncio.StreamWriter) -> None:
    match part:
        case SSE():
            writer.write(part.encode())
        case bytes():
            writer.write(part)
        case Wait(seconds=seconds):
            await writer.drain()
            if seconds is None:
                await asyncio.Event().wait()  # the server's exit cancels it
            else:
                await asyncio.sleep(seconds)
        case KeepAlive(every_s=every_s, count=count):
            sent = 0
            while count is None or sent < count:
                writer.write(b": keep-alive\n\n")
                await writer.drain()  # raises once the client has hung up
                sent += 1
                await asyncio.sleep(every_s)
        case _:
            assert_never(part)


def _head(status: int, headers: Iterable[tuple[str, str]], length: int | None) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:  # 529 and other vendor codes
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_request(reader: asyncio.StreamReader) -> WireRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return WireRequest(method=method, path=path, headers=headers, body=body)

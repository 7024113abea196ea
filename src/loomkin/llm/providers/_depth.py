"""Refusing a provider's JSON nested past any real payload, before the SDK parses it.

Why: the ``openai`` and ``anthropic`` SDKs decode every server-sent event and every error
body with :func:`json.loads`, which recurses once per level and stops only at the
interpreter's recursion limit. An endpoint that sends ``[[[[…`` fifty thousand deep (a
broken local server, a hostile proxy) makes the SDK run the interpreter to that limit, and
a garbage collection that happens there runs finalizers with no stack left: they fail as
"Exception ignored in ..." instead of doing their work. Real events nest a few levels, so
anything past :data:`MAX_WIRE_DEPTH` is refused as a broken stream (transient: the call is
retried) before it reaches the SDK.

How: an httpx response hook wraps the body (the SDKs may ship their own fork of httpx, so
the wrapper derives from the byte-stream class of whichever module made the response). An
event stream is checked one event at a time (events end at a blank line), any other body
as a whole, when its last byte has arrived and before the chunk holding it is handed on.
Counting brackets proves almost every event shallow at C speed; only a unit with more
brackets than the limit is scanned exactly.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import TYPE_CHECKING, Any, cast

from loomkin.core.nesting import nesting_exceeds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["MAX_WIRE_DEPTH", "WireTooDeep", "guard_depth"]

MAX_WIRE_DEPTH = 128
"""Deepest nesting accepted in one event or body (real events nest under ten levels)."""

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class WireTooDeep(ValueError):
    """A provider sent JSON nested deeper than :data:`MAX_WIRE_DEPTH`; nothing parsed it."""


class _Unit:
    """The bytes of the event (or body) being received, and how many brackets they open."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.opens = 0

    def add(self, data: bytes) -> None:
        if data:
            self.parts.append(data)
            self.opens += data.count(b"[") + data.count(b"{")

    def check_and_reset(self, limit: int) -> None:
        too_deep = self.opens > limit and nesting_exceeds(b"".join(self.parts), limit)
        self.parts, self.opens = [], 0
        if too_deep:
            raise WireTooDeep(f"the server sent JSON nested more than {limit} levels deep")


class _Guarded:
    """Mixed into the response's own ``AsyncByteStream`` class (see :func:`_guarded_type`)."""

    def __init__(self, inner: Any, *, events: bool, limit: int) -> None:
        self._inner = inner
        self._events = events
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        unit = _Unit()
        tail = b""  # the last bytes of the previous chunk: an event end may straddle two
        async for chunk in self._inner:
            if self._events:
                start = 0
                joined = tail + chunk
                for end in _EVENT_END.finditer(joined):
                    if end.end() <= len(tail):
                        continue  # an event end inside the previous chunk: counted there
                    # Parts of the previous chunk are already in the unit; take this chunk's.
                    unit.add(chunk[max(0, start - len(tail)) : max(0, end.end() - len(tail))])
                    unit.check_and_reset(self._limit)
                    start = end.end()
                unit.add(chunk[max(0, start - len(tail)) :])
                tail = joined[-3:]
            else:
                unit.add(chunk)
            yield chunk
        unit.check_and_reset(self._limit)

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.cache
def _guarded_type(base: type) -> type[_Guarded]:
    return cast("type[_Guarded]", type("GuardedStream", (_Guarded, base), {}))


async def guard_depth(response: Any) -> None:
    """Response hook for httpx: refuse the body's JSON past :data:`MAX_WIRE_DEPTH` levels.

    Pass it as ``event_hooks={"response": [guard_depth]}`` to the SDK's httpx client.
    """
    module = sys.modules[type(response).__module__.partition(".")[0]]
    base: type = module.AsyncByteStream
    if not isinstance(response.stream, base):
        return  # a body read already (a synchronous client): nothing is parsed after this
    events = response.headers.get("content-type", "").startswith("text/event-stream")
    response.stream = _guarded_type(base)(response.stream, events=events, limit=MAX_WIRE_DEPTH)

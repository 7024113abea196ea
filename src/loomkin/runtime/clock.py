"""Time sources for the runtime.

Runtime code never reads ``time.time()`` directly: it asks a :class:`Clock`, so tests that run
on virtual loop time (``@pytest.mark.looptime``) see timestamps and windows advance virtually.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

__all__ = ["Clock", "LoopClock"]


class Clock(Protocol):
    """A source of wall-clock and monotonic time."""

    def now(self) -> float:
        """Return the current time in Unix seconds."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic time in seconds, for measuring intervals."""
        ...


class LoopClock:
    """A clock that follows the running event loop's ``time()``.

    ``monotonic()`` is the running loop's ``time()``. ``now()`` is the wall time captured when
    the clock was anchored plus the loop time elapsed since, so under a virtual-time loop both
    advance virtually. The anchor is taken at construction when a loop is running, otherwise at
    the first call made inside a running loop. Outside any loop both fall back to the process's
    wall and monotonic clocks.
    """

    __slots__ = ("_loop", "_loop0", "_wall0")

    def __init__(self) -> None:
        self._wall0 = 0.0
        self._loop0 = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # no running loop yet: anchored at first use
            self._anchor(asyncio.get_running_loop())

    def _anchor(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop0 = loop.time()
        self._wall0 = time.time()

    def _loop_time(self) -> float | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        if loop is not self._loop:
            self._anchor(loop)
        return loop.time()

    def now(self) -> float:
        t = self._loop_time()
        if t is None:
            return time.time()
        return self._wall0 + (t - self._loop0)

    def monotonic(self) -> float:
        t = self._loop_time()
        return time.monotonic() if t is None else t

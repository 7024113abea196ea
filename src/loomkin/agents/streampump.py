"""A model stream consumed by a task of its own, so its reader can wait on more than the stream.

How this works and why: an ``async for`` over a model stream can only be interrupted between
two events, so a pause asked while the model is silent (before its first chunk, during a
retry's backoff inside the stream, or for ever when a provider sends only keep-alives) would
wait for the next event. :class:`StreamPump` iterates the stream in a task and queues each
event; the reader (:mod:`loomkin.agents.modelcall`) takes events from the queue and waits,
with a timeout, for whichever comes first: the next event or a control command in the
agent's mailbox. Every way the stream ends is queued too (:class:`StreamDone`, or
:class:`StreamFailed` with the exception, whatever its type), so nothing a stream raises
escapes the task. :meth:`StreamPump.close` cancels the task, which closes the generator where
it waits and, underneath, the HTTP response.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loomkin.errors import ProviderError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.llm.model import StreamEvent
    from loomkin.runtime.mailbox import Mailbox

__all__ = ["StreamDone", "StreamFailed", "StreamPump"]

logger = logging.getLogger(__name__)

_CLOSE_GRACE_S = 5.0
"""How long a cancelled stream may take to close before it is left behind (and logged)."""


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream raised ``error`` (it is over)."""

    error: Exception


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The stream ended without an error."""


class StreamPump:
    """Runs ``stream`` in a task of its own, queueing its events (see the module docstring)."""

    def __init__(self, stream: AsyncIterator[StreamEvent]) -> None:
        self._queue: deque[StreamEvent | StreamFailed | StreamDone] = deque()
        self._ready: asyncio.Future[None] | None = None
        self._control: asyncio.Task[None] | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(stream), name="model-stream")

    async def _run(self, stream: AsyncIterator[StreamEvent]) -> None:
        try:
            try:
                async for event in stream:
                    self._put(event)
            finally:
                if isinstance(stream, AsyncGenerator):
                    await stream.aclose()
        except Exception as exc:  # every failure of a stream is reported, none is raised
            self._put(StreamFailed(exc))
        except asyncio.CancelledError:
            # Cut by close(), or cancelled from outside (the loop shutting down): either way
            # whoever reads the queue must not wait for an event that cannot come.
            self._put(StreamFailed(ProviderError("the model stream was cancelled")))
            raise
        else:
            self._put(StreamDone())

    def _put(self, item: StreamEvent | StreamFailed | StreamDone) -> None:
        self._queue.append(item)
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def take(self) -> StreamEvent | StreamFailed | StreamDone | None:
        """The next queued item, or ``None``."""
        return self._queue.popleft() if self._queue else None

    async def wait(self, mailbox: Mailbox[Any, Any], seconds: float) -> None:
        """Wait until an item is queued, a control command reaches ``mailbox``, or ``seconds``."""
        if self._queue:
            return
        ready = self._ready = asyncio.get_running_loop().create_future()
        if self._control is None or self._control.done():
            self._control = asyncio.ensure_future(mailbox.wait_control())
        try:
            await asyncio.wait(
                {ready, self._control}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._ready = None
            ready.cancel()

    async def close(self) -> None:
        """Stop the stream (if it still runs) and wait until it is closed."""
        if self._control is not None:
            self._control.cancel()
        task = self._task
        if task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=_CLOSE_GRACE_S)
        if not task.done():
            logger.warning("a cancelled model stream did not close within %g s", _CLOSE_GRACE_S)

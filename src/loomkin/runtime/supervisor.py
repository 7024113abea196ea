r"""Supervision of child tasks: restart on crash, within a budget of restarts per time window.

Each child runs inside a supervising task owned by the :class:`Supervisor`. When the child's
coroutine raises an ``Exception`` the supervisor records the crash time (``clock.monotonic()``),
calls ``on_crash`` and builds a fresh coroutine with the factory; once more than
``max_restarts`` crashes fall within ``window_s`` it calls ``on_give_up`` instead and stops.
``CancelledError`` (and other ``BaseException``\\ s) are never caught: cancelling a child stops
it. Nothing is swallowed silently: every crash is logged with its traceback and counted, and a
callback that itself raises is logged and counted too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from loomkin.errors import UserError
from loomkin.runtime.clock import LoopClock

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from loomkin.runtime.clock import Clock

__all__ = ["Supervisor", "SupervisorStatistics"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorStatistics:
    """Counters of a :class:`Supervisor`."""

    running: int
    """Children currently running."""
    started: int
    """Children started (restarts not included)."""
    crashes: int
    restarts: int
    give_ups: int
    """Children abandoned after too many crashes in the window."""
    callback_errors: int
    """Times ``on_crash`` or ``on_give_up`` raised (each is logged)."""


class Supervisor:
    """Owns child tasks and restarts them when they crash (see the module docstring).

    Args:
        max_restarts: Crashes tolerated within ``window_s``; one more and the child is given up.
        window_s: Length of the sliding window, in seconds of ``clock.monotonic()``.
        clock: Time source (defaults to :class:`LoopClock`, so virtual time works).
    """

    def __init__(
        self, *, max_restarts: int = 3, window_s: float = 60.0, clock: Clock | None = None
    ) -> None:
        if max_restarts < 0:
            raise UserError(f"max_restarts must be 0 or more, got {max_restarts}")
        if window_s <= 0:
            raise UserError(f"window_s must be positive, got {window_s}")
        self._max_restarts = max_restarts
        self._window_s = window_s
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._groups: dict[str, str] = {}
        self._stopped_groups: set[str] = set()
        self._stopped = False
        self._started = 0
        self._crashes = 0
        self._restarts = 0
        self._give_ups = 0
        self._callback_errors = 0

    def run(
        self,
        key: str,
        factory: Callable[[], Awaitable[None]],
        *,
        on_crash: Callable[[str, BaseException, int], Awaitable[None]] | None = None,
        on_give_up: Callable[[str, BaseException], Awaitable[None]] | None = None,
        group: str | None = None,
    ) -> asyncio.Task[None]:
        """Run ``factory()`` as a supervised child under ``key``.

        If a child with this key is running, nothing new is started and its task is returned.
        ``group`` (a session id, say) lets :meth:`wait_idle` wait for one group's children.
        On a crash (an ``Exception``), ``on_crash(key, exc, crashes_in_window)`` is awaited,
        ``crashes_in_window`` counting this crash; then the child is restarted by calling
        ``factory`` again, unless that count exceeds ``max_restarts``, in which case
        ``on_give_up(key, exc)`` is awaited and the child stops.

        Raises:
            UserError: the supervisor (or ``group``) was stopped.
        """
        if self._stopped:
            raise UserError(f"supervisor is stopped; cannot run {key!r}")
        if group is not None and group in self._stopped_groups:
            raise UserError(f"group {group!r} is stopped; cannot run {key!r}")
        task = self._tasks.get(key)
        if task is not None and not task.done():
            return task
        task = asyncio.get_running_loop().create_task(
            self._supervise(key, factory, on_crash, on_give_up), name=f"supervised:{key}"
        )
        self._tasks[key] = task
        if group is not None:
            self._groups[key] = group
        self._started += 1
        task.add_done_callback(lambda t: self._forget(key, t))
        return task

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
            self._groups.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # Only a BaseException other than CancelledError gets here (KeyboardInterrupt…).
            logger.error("supervised child %r ended abnormally", key, exc_info=task.exception())

    async def _supervise(
        self,
        key: str,
        factory: Callable[[], Awaitable[None]],
        on_crash: Callable[[str, BaseException, int], Awaitable[None]] | None,
        on_give_up: Callable[[str, BaseException], Awaitable[None]] | None,
    ) -> None:
        crashes: deque[float] = deque()
        while True:
            try:
                await factory()
                return
            except Exception as exc:
                now = self._clock.monotonic()
                crashes.append(now)
                while crashes and crashes[0] <= now - self._window_s:
                    crashes.popleft()
                self._crashes += 1
                logger.warning("supervised child %r crashed", key, exc_info=exc)
                if on_crash is not None:
                    await self._callback(key, partial(on_crash, key, exc, len(crashes)))
                if len(crashes) > self._max_restarts:
                    self._give_ups += 1
                    logger.error(
                        "giving up on %r: %d crashes within %gs (at most %d restarts allowed)",
                        key,
                        len(crashes),
                        self._window_s,
                        self._max_restarts,
                    )
                    if on_give_up is not None:
                        await self._callback(key, partial(on_give_up, key, exc))
                    return
                self._restarts += 1

    async def _callback(self, key: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            await call()
        except Exception:
            self._callback_errors += 1
            logger.exception("supervisor callback for %r failed", key)

    def is_running(self, key: str) -> bool:
        """Return whether a child with ``key`` is running."""
        task = self._tasks.get(key)
        return task is not None and not task.done()

    async def cancel(self, key: str) -> None:
        """Cancel the child ``key`` (if running) and wait until it has finished."""
        task = self._tasks.get(key)
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called: :meth:`run` refuses new children."""
        return self._stopped

    async def stop(self) -> None:
        """Cancel every child and wait for all of them; no child can be started afterwards."""
        self._stopped = True
        while tasks := [t for t in self._tasks.values() if not t.done()]:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    def stop_group(self, group: str) -> None:
        """Refuse new children of ``group`` and cancel its running ones, without waiting.

        For one session whose lease was taken over while the others go on; :meth:`stop`
        still reaps the cancelled children.
        """
        self._stopped_groups.add(group)
        for key, task in self._tasks.items():
            if self._groups.get(key) == group:
                task.cancel()

    def group_stopped(self, group: str) -> bool:
        """True once :meth:`stop_group` stopped ``group`` (or the whole supervisor stopped)."""
        return self._stopped or group in self._stopped_groups

    def halt(self) -> None:
        """Refuse new children and cancel every running one, without waiting (see :meth:`stop`).

        For a caller that cannot await (a failing event log); :meth:`stop` still reaps them.
        """
        self._stopped = True
        for task in self._tasks.values():
            task.cancel()

    async def wait_idle(self, group: str | None = None) -> None:
        """Return once no child (of ``group``, when given) is running.

        Children started meanwhile are waited for too.
        """
        while tasks := self._running(group):
            await asyncio.wait(tasks)

    def _running(self, group: str | None) -> list[asyncio.Task[None]]:
        return [
            t
            for key, t in self._tasks.items()
            if not t.done() and (group is None or self._groups.get(key) == group)
        ]

    def running(self, group: str | None = None) -> int:
        """Children running now (of ``group``, when given)."""
        return len(self._running(group))

    def statistics(self) -> SupervisorStatistics:
        """Return the supervisor's counters."""
        return SupervisorStatistics(
            running=sum(1 for t in self._tasks.values() if not t.done()),
            started=self._started,
            crashes=self._crashes,
            restarts=self._restarts,
            give_ups=self._give_ups,
            callback_errors=self._callback_errors,
        )

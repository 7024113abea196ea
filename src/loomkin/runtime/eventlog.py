"""The event log: group-committed appends over an :class:`~loomkin.core.store.EventStore`.

How this works and why:

* **Group commit.** ``append`` does not touch the store. It stamps the events (``event_id``,
  ``recorded_at``), queues them with a future, wakes the log's committer task and waits. The
  committer takes everything queued so far (up to ``max_batch`` events, never splitting one
  call's events) and writes it in *one* store transaction, then resolves every caller's future
  with its slice of the result. Under load, many producers share one transaction, which is what
  makes SQLite and Postgres fast enough; with one producer it costs one extra task switch.
* **Atomicity per call.** The events of one ``append`` call are one batch: all or none. If a
  shared transaction fails, the committer retries each call of the group in its own
  transaction, so one bad call fails alone and does not take its neighbours with it.
* **Dispatch order.** After the store acknowledged a transaction, and before any caller
  resumes, the committer calls the synchronous listeners for each event in position order
  (projections are therefore up to date when ``append`` returns), then offers the events to the
  live subscriptions.
* **Fail-stop.** A listener is a projection of the log; one that raises would drift from the
  log from then on. So the log *halts*: the failing call and every queued call fail with
  :class:`~loomkin.errors.ProjectionFailed` (naming the listener and the event's position), the
  subscriptions end, later appends are refused with the same error, and ``on_halt`` lets the
  runtime stop its agents. The events already committed stay in the store: reopening replays
  them, so the failure shows again until its cause is fixed.
* **Subscriptions without gaps.** A subscription registers for live events the moment it is
  created, and buffers them. One created with ``after=N`` first reads the store from ``N`` in
  pages, then switches to its buffer, skipping events it has already delivered (positions only
  grow, so "already delivered" is ``position <= cursor``). Every event committed before the
  registration is in the store; every one dispatched after it is in the buffer; so there is no
  gap and no duplicate at the hand-over.
* **Bounded subscriber memory.** A subscription's live buffer holds at most ``maxsize``
  events. On overflow it drops the whole buffer, counts the overflow, and goes back to reading
  the store from its cursor (its last delivered position) — a slow subscriber never loses an
  event and never holds more than ``maxsize`` events in memory.
* **Fencing: one writer per session.** The owner of a session's lease hands the log its
  fence (:meth:`EventLog.fence`); from then on every append carrying that session's events
  passes the fence to the store, which refuses it with
  :class:`~loomkin.errors.StaleEpoch` once another process took the session over. A group
  commit passes the distinct fences of its calls. A stale fence fails exactly the calls that
  carry it, at once and never retried (the other calls of the group are committed without
  them); the log then refuses that session's later appends with the same error and tells its
  owner (``on_fenced``) so that the session's agents stop. Other sessions go on.
* Cancelling a caller of ``append`` does not un-append its events: once queued they are
  committed (the caller just does not wait to see it). ``close()`` commits what is queued,
  stops the committer and ends the subscriptions; it does not close the store (its owner does).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from loomkin.core.events.base import Event, NewEvent, RecordedEvent
from loomkin.core.store import Fence
from loomkin.errors import ProjectionFailed, StaleEpoch, UserError
from loomkin.ids import EventId, new_id
from loomkin.runtime.clock import LoopClock

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from loomkin.core.store import EventStore
    from loomkin.runtime.clock import Clock

__all__ = ["EventLog", "EventLogStatistics", "Subscription", "SubscriptionStatistics"]

logger = logging.getLogger(__name__)

_PAGE = 1000
"""Events read from the store per page when a subscription catches up."""


@dataclass(slots=True, eq=False)
class _Pending:
    """One ``append`` call waiting for the committer."""

    events: list[NewEvent]
    fences: tuple[Fence, ...]
    """The fences of the sessions its events belong to (empty: unfenced)."""
    future: asyncio.Future[list[RecordedEvent]]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLogStatistics:
    """Counters of an :class:`EventLog` since it was created."""

    appends: int
    """``append`` calls committed."""
    events: int
    """Events committed."""
    commits: int
    """Store transactions (a group commit holds one or more ``append`` calls)."""
    failed_appends: int
    """``append`` calls whose batch the store refused."""
    stale_appends: int
    """Of those, calls refused because their session's fence was stale (taken over)."""
    largest_commit: int
    """Most events written in one store transaction."""
    listener_errors: int
    """Times a listener raised (each is logged with its traceback)."""
    listeners: int
    subscriptions: int
    last_position: int
    pending: int
    """``append`` calls queued and not yet committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionStatistics:
    """Counters of one :class:`Subscription`."""

    delivered: int
    """Events handed to the consumer."""
    cursor: int
    """Highest position delivered or skipped by the filters."""
    buffered: int
    """Live events waiting in the buffer."""
    overflows: int
    """Times the buffer overflowed and the subscription fell back to reading the store."""
    catching_up: bool
    """Whether the next events come from the store rather than the live buffer."""
    closed: bool


class EventLog:
    """The append-only event log every change of state goes through (see the module docstring).

    Args:
        store: The durable store the log writes to and catches up from.
        clock: Time source for ``recorded_at`` (defaults to :class:`LoopClock`).
        max_batch: Most events written in one store transaction (one call's batch is never
            split, so a single larger call is written alone).
        on_halt: Called once if the log halts because a listener raised (see the module
            docstring), so the owner can stop what depends on it.
        on_fenced: Called once per session whose fence the store refused (another process
            took the session over), so the owner can stop that session's agents.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock | None = None,
        max_batch: int = 1024,
        on_halt: Callable[[ProjectionFailed], None] | None = None,
        on_fenced: Callable[[StaleEpoch], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise UserError(f"max_batch must be at least 1, got {max_batch}")
        self._store = store
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._last_position = 0
        self._listeners: tuple[Callable[[RecordedEvent], None], ...] = ()
        self._subs: tuple[Subscription, ...] = ()
        self._appends = 0
        self._events = 0
        self._commits = 0
        self._failed = 0
        self._largest = 0
        self._listener_errors = 0
        self._on_halt = on_halt
        self._halted: ProjectionFailed | None = None
        self._on_fenced = on_fenced
        self._fences: dict[str, Fence] = {}
        self._fenced_out: dict[str, StaleEpoch] = {}
        self._stale_appends = 0
        self._pulling = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the store's last position and start the committer task (idempotent)."""
        if self._closed:
            raise UserError("the event log is closed")
        if self._task is not None:
            return
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._last_position = last = await self._store.last_position()
        for sub in self._subs:
            sub._start_live_at(last)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="loomkin-eventlog-committer"
            )

    async def close(self) -> None:
        """Commit the queued appends, stop the committer and end every subscription."""
        self._closed = True
        task = self._task
        if task is not None and self._wakeup is not None:
            self._wakeup.set()
            try:
                await asyncio.wait([task])
            finally:
                if not task.done():  # we were cancelled while flushing: stop the committer
                    task.cancel()
                    await asyncio.wait([task])
        for sub in self._subs:
            sub._end()
        self._subs = ()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- fencing -------------------------------------------------------------------------------

    def fence(self, fence: Fence) -> None:
        """Carry ``fence`` on every later append of events of ``fence.session_id``."""
        self._fences[fence.session_id] = fence
        self._fenced_out.pop(fence.session_id, None)

    def unfence(self, session_id: str) -> None:
        """Stop carrying a fence for ``session_id`` (its lease was released)."""
        self._fences.pop(session_id, None)

    def fenced_out(self, session_id: str) -> StaleEpoch | None:
        """Why the log refuses ``session_id``'s appends (its fence went stale), or ``None``."""
        return self._fenced_out.get(session_id)

    def _fences_of(self, batch: list[NewEvent]) -> tuple[Fence, ...]:
        fences: dict[str, Fence] = {}
        for new in batch:
            session_id = new.event.session_id
            if session_id in self._fenced_out:
                raise self._fenced_out[session_id]
            fence = self._fences.get(session_id)
            if fence is not None:
                fences[session_id] = fence
        return tuple(fences.values())

    def fence_lost(self, exc: StaleEpoch) -> None:
        """Refuse the session's appends from now on, with ``exc`` (its fence went stale).

        Called when the store refused the fence, or the lease's renewal; the owner is told
        once (``on_fenced``).
        """
        fence = self._fences.get(exc.session_id)
        if fence is None or fence.epoch != exc.epoch or exc.session_id in self._fenced_out:
            return
        self._fenced_out[exc.session_id] = exc
        logger.warning("session %s lost its lease: %s", exc.session_id, exc)
        if self._on_fenced is not None:
            self._on_fenced(exc)

    # -- appending -----------------------------------------------------------------------------

    async def append(self, *events: Event) -> list[RecordedEvent]:
        """Durably append ``events`` as one atomic batch and return them as recorded.

        Returns after the store acknowledged the batch and after the listeners saw it.

        Raises:
            UserError: the log is closed or an argument is not an :class:`Event`.
            StaleEpoch: another process took over a session the events belong to (nothing
                was written; see "Fencing" in the module docstring).
            StoreError: the store refused the batch (nothing of it was written).
        """
        if not events:
            return []
        if self._halted is not None:
            raise self._halted
        if self._closed:
            raise UserError("the event log is closed; nothing was appended")
        if self._task is None:
            await self.start()
        now = self._clock.now()
        batch = []
        for event in events:
            if not isinstance(event, Event):
                raise UserError(f"EventLog.append takes Event instances, got {event!r}")
            batch.append(NewEvent(event_id=EventId(new_id()), recorded_at=now, event=event))
        fences = self._fences_of(batch)
        fut: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(batch, fences, fut))
        wakeup = self._wakeup
        assert wakeup is not None
        if not wakeup.is_set():
            wakeup.set()
        return await fut

    async def _run(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        while True:
            if not self._pending:
                if self._closed:
                    return
                wakeup.clear()
                await wakeup.wait()
                continue
            await self._commit_group(self._take_group())

    def _take_group(self) -> list[_Pending]:
        pending = self._pending
        size = 0
        n = 0
        for call in pending:
            if n and size + len(call.events) > self._max_batch:
                break
            size += len(call.events)
            n += 1
        if n == len(pending):
            self._pending = []
            return pending
        group = pending[:n]
        del pending[:n]
        return group

    async def _commit_group(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            await self._commit_one(group[0])
            return
        flat = [e for call in group for e in call.events]
        fences = {f.session_id: f for call in group for f in call.fences}
        try:
            recorded = await self._store_append(flat, tuple(fences.values()))
        except StaleEpoch as exc:
            await self._commit_without(exc, group)
            return
        except Exception:
            # One transaction for all failed: give each call its own, so only bad calls fail.
            for call in group:
                if self._halted is not None:
                    _fail(call.future, self._halted)
                    continue
                await self._commit_one(call)
            return
        if not self._dispatch(recorded):
            assert self._halted is not None
            for call in group:
                _fail(call.future, self._halted)
            return
        self._appends += len(group)
        start = 0
        for call in group:
            end = start + len(call.events)
            if not call.future.done():
                call.future.set_result(recorded[start:end])
            start = end

    async def _commit_without(self, exc: StaleEpoch, group: list[_Pending]) -> None:
        """Fail the calls carrying the stale fence, now and for good; commit the others.

        They are committed as a group again (where another stale fence may show up in turn).
        """
        stale = [c for c in group if any(f.session_id == exc.session_id for f in c.fences)]
        if not stale:  # not a fence of ours (cannot happen): give each call its own try
            for call in group:
                await self._commit_one(call)
            return
        self.fence_lost(exc)
        for call in stale:
            self._failed += 1
            self._stale_appends += 1
            _fail(call.future, exc)
        rest = [c for c in group if all(c is not s for s in stale)]
        if rest:
            await self._commit_group(rest)

    async def _commit_one(self, call: _Pending) -> None:
        try:
            recorded = await self._store_append(call.events, call.fences)
        except Exception as exc:
            self._failed += 1
            if isinstance(exc, StaleEpoch):
                self._stale_appends += 1
                self.fence_lost(exc)
            _fail(call.future, exc)
            return
        if not self._dispatch(recorded):
            assert self._halted is not None
            _fail(call.future, self._halted)
            return
        self._appends += 1
        if not call.future.done():
            call.future.set_result(recorded)

    async def _store_append(
        self, events: list[NewEvent], fences: tuple[Fence, ...]
    ) -> list[RecordedEvent]:
        if not fences:  # unfenced writers (and minimal stores) take no fences argument
            return await self._store.append(events)
        return await self._store.append(events, fences=fences)

    def _dispatch(self, recorded: list[RecordedEvent]) -> bool:
        """Hand committed events to the listeners, then the subscriptions; False if halted."""
        if not recorded:
            return True
        n = len(recorded)
        self._commits += 1
        self._events += n
        self._largest = max(self._largest, n)
        self._last_position = recorded[-1].position
        listeners = self._listeners
        if listeners:
            for rec in recorded:
                for fn in listeners:
                    try:
                        fn(rec)
                    except Exception as exc:
                        self._listener_errors += 1
                        failure = (
                            exc
                            if isinstance(exc, ProjectionFailed)
                            else ProjectionFailed(repr(fn), rec.position, rec.event.kind, exc)
                        )
                        logger.critical("the event log halts: %s", failure, exc_info=exc)
                        self._halt(failure, recorded)
                        return False
        for sub in self._subs:
            sub._offer(recorded)
        return True

    def _halt(self, failure: ProjectionFailed, recorded: list[RecordedEvent]) -> None:
        """Stop for good after a listener failed (see "Fail-stop" in the module docstring)."""
        self._halted = failure
        self._closed = True
        pending, self._pending = self._pending, []
        for call in pending:
            _fail(call.future, failure)
        for sub in self._subs:
            sub._offer(recorded)  # committed: readers may see them, then their stream ends
            sub._end()
        self._subs = ()
        if self._on_halt is not None:
            self._on_halt(failure)

    @property
    def halted(self) -> ProjectionFailed | None:
        """Why the log halted, or ``None`` while it works."""
        return self._halted

    # -- listeners and subscriptions -----------------------------------------------------------

    def add_listener(self, fn: Callable[[RecordedEvent], None]) -> Callable[[], None]:
        """Call ``fn`` synchronously for every committed event, in position order.

        Returns:
            A function that removes the listener (calling it twice is harmless).
        """
        self._listeners = (*self._listeners, fn)

        def remove() -> None:
            self._listeners = tuple(f for f in self._listeners if f is not fn)

        return remove

    def subscribe(
        self,
        *,
        after: int | None = None,
        session_id: str | None = None,
        kinds: frozenset[str] | None = None,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Return a subscription to committed events.

        Args:
            after: ``None`` for live events only; a position to catch up from the store first
                (events with a greater position), then continue live without gap or duplicate.
            session_id: Only events of this session.
            kinds: Only events of these kinds.
            maxsize: Bound of the live buffer; on overflow the subscription drops the buffer and
                re-reads from the store from its last delivered position (nothing is lost).
        """
        if self._closed:
            raise UserError("the event log is closed; cannot subscribe")
        if maxsize < 1:
            raise UserError(f"maxsize must be at least 1, got {maxsize}")
        sub = Subscription(
            self,
            cursor=self._last_position if after is None else after,
            catch_up=after is not None,
            session_id=session_id,
            kinds=kinds,
            maxsize=maxsize,
        )
        self._subs = (*self._subs, sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self._subs = tuple(s for s in self._subs if s is not sub)

    # -- reading -------------------------------------------------------------------------------

    async def pull(self) -> list[RecordedEvent]:
        """Dispatch the events other processes committed to the store since this log's newest.

        For a runtime that watches a store others write (a cluster's web app): their events
        reach the listeners and subscriptions as if committed here, in position order, and
        are returned. Calls are serialised. The store shows positions strictly in order, so
        nothing is skipped; an event this log committed itself meanwhile is not dispatched
        twice. Meant for a log that appends nothing itself (an append made here between two
        pulls would move the newest position past the others' events in between).

        Raises:
            ProjectionFailed: a listener raised (the log halts, as for its own appends).
            UserError: the log is closed.
        """
        if self._halted is not None:
            raise self._halted
        if self._closed:
            raise UserError("the event log is closed; nothing was pulled")
        async with self._pulling:
            fresh = [
                r
                for r in await self._store.read(self._last_position)
                if r.position > self._last_position
            ]
            if fresh and not self._dispatch(fresh):
                assert self._halted is not None
                raise self._halted
            return fresh

    async def read(self, after: int = 0, *, session_id: str | None = None) -> list[RecordedEvent]:
        """Return the committed events with position > ``after`` (optionally of one session)."""
        return await self._store.read(after, session_id=session_id)

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        """Return the events of ``stream`` with stream version > ``after``."""
        return await self._store.read_stream(stream, after)

    @property
    def last_position(self) -> int:
        """Position of the newest event committed through (or found by) this log."""
        return self._last_position

    def statistics(self) -> EventLogStatistics:
        """Return the log's counters."""
        return EventLogStatistics(
            appends=self._appends,
            events=self._events,
            commits=self._commits,
            failed_appends=self._failed,
            stale_appends=self._stale_appends,
            largest_commit=self._largest,
            listener_errors=self._listener_errors,
            listeners=len(self._listeners),
            subscriptions=len(self._subs),
            last_position=self._last_position,
            pending=len(self._pending),
        )


def _fail(fut: asyncio.Future[list[RecordedEvent]], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class Subscription:
    """An async iterator over committed events, made by :meth:`EventLog.subscribe`.

    Overflow policy: the live buffer is bounded by ``maxsize``. When an event arrives at a full
    buffer, the buffer is dropped and the subscription re-reads the store from its last
    delivered position, so a slow subscriber never loses an event and its memory stays bounded.
    Iteration ends after :meth:`close`, or when the log closes (after the remaining events).
    """

    def __init__(
        self,
        log: EventLog,
        *,
        cursor: int,
        catch_up: bool,
        session_id: str | None,
        kinds: frozenset[str] | None,
        maxsize: int,
    ) -> None:
        self._log = log
        self._cursor = cursor
        self._catching_up = catch_up
        self._session_id = session_id
        self._kinds = kinds
        self._maxsize = maxsize
        self._buffer: deque[RecordedEvent] = deque()
        self._replay: deque[RecordedEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._ended = False
        self._delivered = 0
        self._overflows = 0

    def _wanted(self, rec: RecordedEvent) -> bool:
        if self._session_id is not None and rec.event.session_id != self._session_id:
            return False
        return self._kinds is None or rec.event.kind in self._kinds

    def _offer(self, recorded: list[RecordedEvent]) -> None:
        buffer = self._buffer
        if self._session_id is None and self._kinds is None:
            buffer.extend(recorded)
        else:
            buffer.extend(r for r in recorded if self._wanted(r))
        if len(buffer) > self._maxsize:
            buffer.clear()
            self._overflows += 1
            self._catching_up = True
        self._wake()

    def _start_live_at(self, position: int) -> None:
        # A live-only subscription made before the log started must not replay older history.
        if not self._catching_up and not self._delivered:
            self._cursor = max(self._cursor, position)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def close(self) -> None:
        """Stop the subscription; iteration ends at once and the buffer is released."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        self._replay.clear()
        self._log._unsubscribe(self)
        self._wake()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordedEvent:
        while not self._closed:
            if self._replay:
                rec = self._replay.popleft()
                self._delivered += 1
                return rec
            if self._catching_up:
                await self._read_page()
                continue
            buffer = self._buffer
            while buffer:
                rec = buffer.popleft()
                if rec.position > self._cursor:
                    self._cursor = rec.position
                    self._delivered += 1
                    return rec
            if self._ended:
                break
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        raise StopAsyncIteration

    async def _read_page(self) -> None:
        # Cleared before the read: an overflow during the read sets it again, forcing a re-read.
        self._catching_up = False
        page = await self._log._store.read(self._cursor, limit=_PAGE, session_id=self._session_id)
        if self._closed or not page:
            return
        self._catching_up = True
        self._cursor = page[-1].position
        if self._kinds is None:
            self._replay.extend(page)
        else:
            self._replay.extend(r for r in page if r.event.kind in self._kinds)

    def statistics(self) -> SubscriptionStatistics:
        """Return the subscription's counters."""
        return SubscriptionStatistics(
            delivered=self._delivered,
            cursor=self._cursor,
            buffered=len(self._buffer),
            overflows=self._overflows,
            catching_up=self._catching_up,
            closed=self._closed,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

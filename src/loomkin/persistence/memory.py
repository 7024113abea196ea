"""In-memory store: the reference implementation, for tests and throw-away sessions.

Each event is encoded and decoded on append exactly as the SQL stores would store and read it
back, so code tested against this store sees the same values (tuples, not lists; string dict
keys) and an event that cannot round-trip through JSON fails here too, not only in production.
The encoded rows are kept (with their chain hashes), so :meth:`MemoryStore.check` verifies
the same chain the SQL stores do. No method awaits between checking and writing, so a batch
(fences, expected versions, rows) and every lease decision are atomic on the event loop.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from loomkin.core.events import RecordedEvent, decode_event
from loomkin.errors import StoreError
from loomkin.persistence._chain import GENESIS
from loomkin.persistence._check import walk_log
from loomkin.persistence._leases import acquired, check_fences, released, renewed
from loomkin.persistence._rows import check_expected, decode_row, plan_batch
from loomkin.runtime.clock import LoopClock

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events import NewEvent
    from loomkin.core.store import CheckReport, Fence, Lease
    from loomkin.ids import SessionId
    from loomkin.persistence._rows import StoredRow
    from loomkin.runtime.clock import Clock

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`~loomkin.core.store.Store` kept in lists; lost when the process ends.

    Args:
        clock: the time source for leases (default: a ``LoopClock``, virtual under looptime).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._rows: list[StoredRow] = []
        """Index ``position - 1``: the stored columns (``CHAIN_COLUMNS``) of every event."""
        self._events: list[RecordedEvent | None] = []
        """Index ``position - 1``: the decoded event, ``None`` where a test damaged the row."""
        self._streams: dict[str, list[int]] = {}
        """Positions of each stream's events, in version order."""
        self._sessions: dict[str, list[int]] = {}
        """Positions of each session's events, ascending."""
        self._event_ids: set[str] = set()
        self._leases: dict[str, Lease] = {}
        self._closed = False

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        self._check_open()
        check_fences(fences, self._leases)
        # Only the streams this batch touches or names: one stream per agent is common, and
        # copying every stream's version on each append would make appends O(streams).
        touched = {new.event.stream() for new in events} | set(expected_versions or ())
        current = {s: len(self._streams[s]) if s in self._streams else 0 for s in touched}
        check_expected(current, expected_versions)
        for new in events:
            if new.event_id in self._event_ids:
                raise StoreError(f"event id {new.event_id!r} is already stored")
        last_hash = self._rows[-1][9] if self._rows else GENESIS
        assert isinstance(last_hash, bytes)
        batch = plan_batch(
            events,
            last_position=len(self._rows),
            last_hash=last_hash,
            stream_versions=current,
        )
        # Decode every row before storing any, as a database would refuse it before commit.
        stored = [
            RecordedEvent(
                position=row[0],
                stream=row[1],
                stream_version=row[2],
                event_id=new.event_id,
                recorded_at=row[4],
                event=decode_event(row[5], row[6], row[7]),
            )
            for row, new in zip(batch.rows, events, strict=True)
        ]
        for row, recorded in zip(batch.rows, stored, strict=True):
            self._rows.append(row)
            self._events.append(recorded)
            self._streams.setdefault(recorded.stream, []).append(recorded.position)
            self._sessions.setdefault(recorded.event.session_id, []).append(recorded.position)
            self._event_ids.add(recorded.event_id)
        return batch.recorded

    async def read(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        session_id: str | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        if session_id is None:
            positions: Sequence[int] = range(max(after, 0) + 1, len(self._rows) + 1)
        else:
            of_session = self._sessions.get(session_id, [])
            positions = of_session[bisect.bisect_right(of_session, after) :]
        if limit is not None:
            positions = positions[: max(limit, 0)]
        return [self._entry(p) for p in positions]

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        self._check_open()
        return [self._entry(p) for p in self._streams.get(stream, [])[max(after, 0) :]]

    async def last_position(self) -> int:
        self._check_open()
        return len(self._rows)

    async def check(self) -> CheckReport:
        self._check_open()

        async def fetch(after: int, limit: int) -> list[StoredRow]:
            return self._rows[max(after, 0) : max(after, 0) + limit]

        walked, problem = await walk_log(fetch)
        return walked.report() if problem is None else walked.report(*problem)

    async def acquire_lease(
        self,
        session_id: SessionId,
        holder: str,
        *,
        ttl_s: float,
        host: str | None = None,
        pid: int | None = None,
        take_over: bool = False,
        now: float | None = None,
    ) -> Lease:
        self._check_open()
        lease = acquired(
            self._leases.get(session_id), session_id, holder,
            ttl_s=ttl_s, host=host, pid=pid, take_over=take_over, now=self._now(now),
        )  # fmt: skip
        self._leases[session_id] = lease
        return lease

    async def renew_lease(
        self, lease: Lease, *, ttl_s: float | None = None, now: float | None = None
    ) -> Lease:
        self._check_open()
        current = self._leases.get(lease.session_id)
        new = renewed(current, lease, ttl_s=ttl_s, now=self._now(now))
        self._leases[lease.session_id] = new
        return new

    async def release_lease(self, lease: Lease, *, now: float | None = None) -> bool:
        self._check_open()
        new = released(self._leases.get(lease.session_id), lease, now=self._now(now))
        if new is None:
            return False
        self._leases[lease.session_id] = new
        return True

    async def current_lease(self, session_id: SessionId) -> Lease | None:
        self._check_open()
        return self._leases.get(session_id)

    async def close(self) -> None:
        self._closed = True

    def _now(self, now: float | None) -> float:
        return float(self._clock.now() if now is None else now)

    def _entry(self, position: int) -> RecordedEvent:
        event = self._events[position - 1]
        return event if event is not None else decode_row(self._rows[position - 1][:8])

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")

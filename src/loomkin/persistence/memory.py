"""In-memory event store: the reference implementation, for tests and throw-away sessions.

Each event is encoded and decoded on append exactly as the SQL stores would store and read it
back, so code tested against this store sees the same values (tuples, not lists; string dict
keys) and an event that cannot round-trip through JSON fails here too, not only in production.
``append`` never awaits between checking and writing, so a batch is atomic on the event loop.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from loomkin.core.events import RecordedEvent, decode_event
from loomkin.errors import StoreError
from loomkin.persistence._rows import StoredRow, check_expected, decode_row, plan_batch

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events import NewEvent

__all__ = ["MemoryStore"]


class MemoryStore:
    """An :class:`~loomkin.core.store.EventStore` kept in a list; lost when the process ends."""

    def __init__(self) -> None:
        self._log: list[RecordedEvent | StoredRow] = []
        """Index ``position - 1``; a raw row only where a test put a damaged one."""
        self._streams: dict[str, list[int]] = {}
        """Positions of each stream's events, in version order."""
        self._sessions: dict[str, list[int]] = {}
        """Positions of each session's events, ascending."""
        self._event_ids: set[str] = set()
        self._closed = False

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[RecordedEvent]:
        self._check_open()
        # Only the streams this batch touches or names: one stream per agent is common, and
        # copying every stream's version on each append would make appends O(streams).
        touched = {new.event.stream() for new in events} | set(expected_versions or ())
        current = {s: len(self._streams[s]) if s in self._streams else 0 for s in touched}
        check_expected(current, expected_versions)
        for new in events:
            if new.event_id in self._event_ids:
                raise StoreError(f"event id {new.event_id!r} is already stored")
        batch = plan_batch(events, last_position=len(self._log), stream_versions=current)
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
        for recorded in stored:
            self._log.append(recorded)
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
            positions: Sequence[int] = range(max(after, 0) + 1, len(self._log) + 1)
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
        return len(self._log)

    async def close(self) -> None:
        self._closed = True

    def _entry(self, position: int) -> RecordedEvent:
        entry = self._log[position - 1]
        return entry if isinstance(entry, RecordedEvent) else decode_row(entry)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")

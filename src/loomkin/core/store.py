"""The event store port: what every backend (memory, SQLite, Postgres) implements.

Semantics every backend guarantees (checked by ``loomkin.testing.conformance``):

* ``append`` writes a batch atomically: all events of the batch are acknowledged, or none.
  When it returns, the events are durable (for SQLite and Postgres: committed).
* Global positions start at 1 and increase by one per event, without gaps, in append order.
  Stream versions start at 1 per stream and increase by one per event of that stream.
* ``expected_versions`` (optional) maps a stream to the version it must have before the batch;
  a mismatch raises :class:`~loomkin.errors.ConcurrencyError` and writes nothing.
* ``read`` returns events with ``position > after`` in position order; ``read_stream`` returns a
  stream's events with ``stream_version > after`` in version order.
* A stored row that cannot be decoded raises :class:`~loomkin.errors.EventDecodeError` or
  :class:`~loomkin.errors.SchemaVersionError` naming its position; rows before it are
  unaffected and can still be read (``read(after=bad_position)`` skips it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events.base import NewEvent, RecordedEvent

__all__ = ["EventStore"]


class EventStore(Protocol):
    """An append-only, ordered event log with global and per-stream positions."""

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
    ) -> list[RecordedEvent]:
        """Durably append ``events`` as one batch and return them as recorded."""
        ...

    async def read(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        session_id: str | None = None,
    ) -> list[RecordedEvent]:
        """Return events with position > ``after`` (optionally of one session only)."""
        ...

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        """Return the events of ``stream`` with stream version > ``after``."""
        ...

    async def last_position(self) -> int:
        """Return the position of the newest event (0 when the log is empty)."""
        ...

    async def close(self) -> None:
        """Release connections and files; the store cannot be used afterwards."""
        ...

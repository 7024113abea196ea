"""What the SQL backends share: turning batches into rows and rows back into events.

Every store keeps one row per event (see ``_migrations.py``); this module holds the
backend-neutral half of their append and read paths so they cannot drift apart:
:func:`plan_batch` checks a batch against the current stream versions, numbers it and chains
its hashes, and :func:`decode_row` rebuilds a :class:`RecordedEvent`, naming the position and
kind of any row it cannot decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import NewEvent, RecordedEvent, decode_event, encode_event
from loomkin.errors import ConcurrencyError, EventDecodeError, SchemaVersionError, StoreError
from loomkin.ids import EventId
from loomkin.persistence._chain import chain_hash

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "COLUMNS",
    "INSERT_COLUMNS",
    "InsertRow",
    "PlannedBatch",
    "StoredRow",
    "check_expected",
    "decode_row",
    "decode_rows",
    "plan_batch",
]

COLUMNS = "position, stream, stream_version, event_id, recorded_at, kind, schema_version, data"
"""Column order of :data:`StoredRow` and the start of :data:`InsertRow`."""
INSERT_COLUMNS = f"{COLUMNS}, session_id, hash"
"""Column order of :data:`InsertRow` (also :data:`~loomkin.persistence._chain.CHAIN_COLUMNS`)."""

InsertRow = tuple[int, str, int, str, float, str, int, str, str, bytes]
"""``INSERT_COLUMNS``: ``COLUMNS``, ``session_id`` and the chain hash, ready for ``executemany``."""
StoredRow = tuple[object, ...]
"""A row read back in ``COLUMNS`` order; typed loosely because a damaged row may hold anything."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedBatch:
    """A batch numbered and encoded, ready to insert in one transaction."""

    rows: list[InsertRow]
    """One row per event, in batch order."""
    recorded: list[RecordedEvent]
    """What ``append`` returns once the rows are committed."""

    @property
    def head(self) -> tuple[int, bytes] | None:
        """Position and chain hash of the batch's last event, ``None`` for an empty batch."""
        if not self.rows:
            return None
        last = self.rows[-1]
        return last[0], last[9]


def check_expected(current: Mapping[str, int], expected: Mapping[str, int] | None) -> None:
    """Raise :class:`ConcurrencyError` unless every stream is at its expected version.

    Args:
        current: the current version of (at least) every stream named in ``expected``;
            a missing stream is at version 0.
        expected: the versions the caller expects, or ``None`` to skip the check.
    """
    for stream, version in (expected or {}).items():
        actual = current.get(stream, 0)
        if actual != version:
            raise ConcurrencyError(
                f"stream {stream!r} is at version {actual}, the append expected {version}"
            )


def plan_batch(
    events: Sequence[NewEvent],
    *,
    last_position: int,
    last_hash: bytes,
    stream_versions: Mapping[str, int],
) -> PlannedBatch:
    """Number and hash-chain ``events`` after the log's newest event.

    Positions continue after ``last_position``, stream versions after ``stream_versions``,
    and the chain after ``last_hash`` (the hash of the event at ``last_position``).

    Raises:
        StoreError: two events of the batch share an event id, or an event's payload cannot
            be encoded as JSON (the message names its index and kind).
    """
    versions = dict(stream_versions)
    rows: list[InsertRow] = []
    recorded: list[RecordedEvent] = []
    seen: set[str] = set()
    position = last_position
    previous = last_hash
    for index, new in enumerate(events):
        if new.event_id in seen:
            raise StoreError(f"event id {new.event_id!r} appears twice in one batch")
        seen.add(new.event_id)
        event = new.event
        stream = event.stream()
        version = versions.get(stream, 0) + 1
        versions[stream] = version
        position += 1
        try:
            kind, schema_version, data = encode_event(event)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"event {index} of the batch (kind {event.kind!r}) cannot be stored: its "
                f"payload is not JSON ({exc}); nothing of the batch was written"
            ) from None
        row = (
            position,
            stream,
            version,
            new.event_id,
            float(new.recorded_at),
            kind,
            schema_version,
            data,
            event.session_id,
        )
        previous = chain_hash(previous, row)
        rows.append((*row, previous))
        recorded.append(
            RecordedEvent(
                position=position,
                stream=stream,
                stream_version=version,
                event_id=new.event_id,
                recorded_at=new.recorded_at,
                event=event,
            )
        )
    return PlannedBatch(rows=rows, recorded=recorded)


def decode_row(row: StoredRow) -> RecordedEvent:
    """Rebuild the recorded event of one stored row.

    Raises:
        EventDecodeError: the kind is unknown, the payload is not JSON or does not fit.
        SchemaVersionError: the row's schema version is not the one this code reads.
        Both name the row's position and kind.
    """
    position, stream, stream_version, event_id, recorded_at, kind, schema_version, data = row
    assert isinstance(position, int), "position is the integer primary key"
    where = f"event at position {position} (kind {kind!r})"
    if not isinstance(kind, str) or not isinstance(schema_version, int):
        raise EventDecodeError(f"{where}: kind or schema version has the wrong type")
    if not isinstance(data, str | bytes):
        raise EventDecodeError(f"{where}: payload is {type(data).__name__}, not JSON text")
    if not (
        isinstance(stream, str)
        and isinstance(stream_version, int)
        and isinstance(event_id, str)
        and isinstance(recorded_at, int | float)
    ):
        raise EventDecodeError(f"{where}: envelope columns have the wrong types")
    try:
        event = decode_event(kind, schema_version, data)
    except SchemaVersionError as exc:
        raise SchemaVersionError(f"{where}: {exc}") from None
    except EventDecodeError as exc:
        raise EventDecodeError(f"{where}: {exc}") from None
    return RecordedEvent(
        position=position,
        stream=stream,
        stream_version=stream_version,
        event_id=EventId(event_id),
        recorded_at=float(recorded_at),
        event=event,
    )


def decode_rows(rows: Sequence[StoredRow]) -> list[RecordedEvent]:
    """Decode ``rows`` in order; the first bad row raises (see :func:`decode_row`)."""
    return [decode_row(row) for row in rows]

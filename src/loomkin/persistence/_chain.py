"""The hash chain over the log (shared by every backend).

How this works and why:

* Each stored event carries ``hash = sha256(predecessor's hash ‖ canonical bytes)``; the first
  event's predecessor hash is :data:`GENESIS` (32 zero bytes). The canonical bytes are the
  compact JSON array of the row's columns in :data:`CHAIN_COLUMNS` order (``recorded_at`` as a
  float, so an integer time hashes the same before and after the database stored it as REAL).
  JSON is unambiguous (every string is quoted and escaped) and the same on every backend.
* Appending needs only the newest row's hash (one index seek), never the row itself.
* What the chain cannot show on its own: rows removed *from the end* leave a shorter chain
  that verifies. Backends that can lose a tail (SQLite with a lost WAL) keep the head outside
  the log; see ``sqlite.py``. The walk that verifies a log is in ``_check.py``.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["CHAIN_COLUMNS", "GENESIS", "chain_hash"]

GENESIS = bytes(32)
"""The predecessor hash of the event at position 1."""
CHAIN_COLUMNS = (
    "position, stream, stream_version, event_id, recorded_at, kind, schema_version, data, "
    "session_id, hash"
)
"""Columns a check reads, in order: the hashed ones, then the stored hash."""


def chain_hash(previous: bytes, row: Sequence[object]) -> bytes:
    """Return the hash of ``row`` (the first nine :data:`CHAIN_COLUMNS`) chained to ``previous``.

    Raises:
        TypeError: a column holds a value JSON cannot encode (only a damaged row does).
    """
    position, stream, version, event_id, recorded_at, kind, schema, data, session = row[:9]
    if not isinstance(recorded_at, int | float):
        raise TypeError(f"recorded_at is {type(recorded_at).__name__}, not a number")
    canonical = json.dumps(
        [position, stream, version, event_id, float(recorded_at), kind, schema, data, session],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(previous + canonical.encode("utf-8", "surrogatepass")).digest()

"""The store ports: what every backend (memory, SQLite, Postgres) implements.

Three protocols, so each user asks for no more than it needs: :class:`EventStore` is the log
(what the event log and ``loomkin store check`` use), :class:`LeaseStore` decides which
process writes a session (what the runtime uses when it opens a session), and :class:`Store`
is both, which is what :func:`~loomkin.persistence.open_store` returns.

**The log.** Semantics every backend guarantees (checked by ``loomkin.testing.conformance``):

* ``append`` writes a batch atomically: all events of the batch are acknowledged, or none,
  and the batch gets one contiguous range of positions (no other batch interleaves). When it
  returns, the events are durable (SQLite, Postgres: committed). A batch that fails half-way
  (an event that cannot be encoded, an id already stored, the database refusing a row)
  leaves nothing behind, and the next batch continues right after the last acknowledged one.
* Global positions start at 1 and increase by one per event, without gaps, in append order.
  Stream versions start at 1 per stream and increase by one per event of that stream.
* ``expected_versions`` (optional) maps a stream to the version it must have before the batch;
  a mismatch raises :class:`~loomkin.errors.ConcurrencyError` and writes nothing.
* ``fences`` (optional) are :class:`Fence` tokens: each names a session and the epoch of the
  lease the writer holds. The store checks them in the same transaction as the insert, after
  taking the write lock, so no take-over can slip in between: an epoch that is not the
  session's current one (taken over, released, never leased) raises
  :class:`~loomkin.errors.StaleEpoch` and writes nothing. An append without fences is not
  checked at all (session creation, tools, tests): only writers that fence are kept apart.
* ``read`` returns events with ``position > after`` in position order; ``read_stream`` returns a
  stream's events with ``stream_version > after`` in version order.
* A stored row that cannot be decoded raises :class:`~loomkin.errors.EventDecodeError` or
  :class:`~loomkin.errors.SchemaVersionError` naming its position; rows before it are
  unaffected and can still be read (``read(after=bad_position)`` skips it).
* **Hash chain.** Each event stores ``hash = sha256(hash of its predecessor ‖ its canonical
  bytes)`` (the first event's predecessor hash is 32 zero bytes; the canonical bytes are the
  compact JSON array ``[position, stream, stream_version, event_id, recorded_at, kind,
  schema_version, data, session_id]``). So each event records a hash of its predecessor, and
  changing, removing or reordering any stored event breaks the chain from there on.
  :meth:`EventStore.check` walks the whole log and returns a :class:`CheckReport`.

**Leases.** One writer per session: a session's lease names its holder (an id the process
picks, its host and pid), when it was acquired and when it expires; its *epoch* increases by
one every time a holder acquires it, and is never reused. The holder passes ``lease.fence``
with every append, so once another process has acquired the lease (after it expired, or by
``take_over``) the old holder's appends are refused even if it does not know it lost the lease
(a paused VM, a partitioned worker). Expiry only decides whether a new holder may *acquire*
the lease; the store fences by epoch alone, so a holder whose lease expired but was not taken
yet can still append and renew (nobody else can have written in between).

Time: expiry compares Unix seconds. The memory and SQLite stores read the clock they were
given (``LoopClock`` by default, so virtual-time tests work); Postgres uses the server's
``now()`` so that all hosts agree. Every lease method accepts ``now=`` to override it (tests
use that for virtual time; do not mix passed and clock times on one session in production).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loomkin.ids import SessionId

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events.base import NewEvent, RecordedEvent

__all__ = ["CheckReport", "EventStore", "Fence", "Lease", "LeaseStore", "Store", "format_time"]


def format_time(unix_s: float) -> str:
    """Render Unix seconds as an ISO-8601 UTC time, to the second (for messages)."""
    moment = datetime.datetime.fromtimestamp(unix_s, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """A fencing token: "I hold the lease of ``session_id`` at ``epoch``"."""

    session_id: SessionId
    """The session the writer holds."""
    epoch: int
    """The epoch of the writer's lease (see :attr:`Lease.epoch`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One session's lease as the store recorded it."""

    session_id: SessionId
    """The session the lease is for."""
    epoch: int
    """Increases by one on every acquisition (1 for the first); fences appends."""
    holder: str
    """The holder's id, chosen by the holder; unique per process run (a uuid is good)."""
    host: str
    """Host name of the holder (for messages naming it)."""
    pid: int
    """Process id of the holder on ``host``."""
    since: float
    """When this holder acquired the lease (Unix seconds; renewals keep it)."""
    expires_at: float
    """When the lease expires unless renewed (Unix seconds)."""
    ttl_s: float
    """The time to live a renewal adds by default."""
    released: bool = False
    """Whether the holder released it (then anyone may acquire it at once)."""

    @property
    def fence(self) -> Fence:
        """The fencing token to pass with every append of this holder."""
        return Fence(session_id=self.session_id, epoch=self.epoch)

    def is_live(self, now: float) -> bool:
        """Whether the lease still keeps other holders out at time ``now``."""
        return not self.released and now < self.expires_at

    def describe(self) -> str:
        """Name the holder for a person: id, host, pid and since when."""
        return (
            f"holder {self.holder!r} on host {self.host!r} (pid {self.pid}) since "
            f"{format_time(self.since)}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """What :meth:`EventStore.check` found, walking the log from position 1."""

    events_checked: int
    """Events verified good (positions 1 to ``last_good_position``)."""
    last_good_position: int
    """Position of the last event verified good (0 when none)."""
    head: str
    """Hex chain hash of that event (the zero hash when none)."""
    bad_position: int | None = None
    """First position at which something is wrong (``None`` when nothing is, or when the
    problem is not tied to one position, such as a damaged database page)."""
    problem: str | None = None
    """Why: a sentence for a person, ``None`` when the log is sound."""

    @property
    def ok(self) -> bool:
        """Whether the whole log verified."""
        return self.problem is None

    def summary(self) -> str:
        """One line for a person: the count and head, or the first problem."""
        if self.problem is None:
            return f"ok: {self.events_checked} events, chain head {self.head[:16]}"
        where = "" if self.bad_position is None else f" at position {self.bad_position}"
        return f"damaged{where}: {self.problem} ({self.events_checked} events before it verified)"


class EventStore(Protocol):
    """An append-only, ordered, hash-chained event log with global and per-stream positions."""

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        """Durably append ``events`` as one batch and return them as recorded.

        Args:
            events: the batch; an empty batch writes nothing and returns ``[]`` (it still
                checks ``expected_versions`` and ``fences``: a cheap "do I still own it?").
            expected_versions: stream → the version it must be at before the batch.
            fences: one token per session the writer holds (``lease.fence``); a group commit
                of several sessions passes one each.

        Raises:
            ConcurrencyError: a stream is not at its expected version.
            StaleEpoch: a fence's epoch is not its session's current one.
            StoreError: an event id is already stored (or twice in the batch), an event
                cannot be encoded, or the store failed. Nothing of the batch is written.
        """
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

    async def check(self) -> CheckReport:
        """Verify the whole log: gapless positions, every row decodes, the hash chain holds.

        Reads every event once (in pages), so it takes time proportional to the log; it
        reports problems rather than raising them. Backends add what they can check beyond
        the rows (SQLite: the b-tree structure and the head recorded outside the WAL).
        """
        ...

    async def close(self) -> None:
        """Release connections and files; the store cannot be used afterwards."""
        ...


class LeaseStore(Protocol):
    """Per-session leases with a fencing epoch: one writer per session."""

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
        """Take the session's lease for ``holder`` with a new, higher epoch.

        Succeeds when the session was never leased, its lease expired or was released, the
        same ``holder`` holds it (a fresh epoch fences the older incarnation), or
        ``take_over`` is set (the current holder's later appends are refused).

        Args:
            session_id: the session to write.
            holder: the caller's id, unique per process run.
            ttl_s: seconds until the lease expires unless renewed (> 0).
            host: the caller's host name (default: this machine's).
            pid: the caller's process id (default: this process's).
            take_over: take the lease even from a live holder.
            now: the time to use instead of the store's clock (Unix seconds).

        Raises:
            LeaseHeld: another holder's lease is live; the message names it (holder, host,
                pid, since) and says how to take over.
            UserError: ``ttl_s`` is not positive or ``holder`` is empty.
        """
        ...

    async def renew_lease(
        self, lease: Lease, *, ttl_s: float | None = None, now: float | None = None
    ) -> Lease:
        """Extend ``lease`` to ``now + ttl_s`` (default: its own ``ttl_s``), same epoch.

        Works on an expired lease too, as long as nobody acquired it since.

        Raises:
            StaleEpoch: the lease was taken over or released; the caller must stop writing.
        """
        ...

    async def release_lease(self, lease: Lease, *, now: float | None = None) -> bool:
        """Release ``lease`` so another holder may acquire it at once.

        Returns:
            ``True`` if it was released; ``False`` if it was no longer this lease (taken
            over or already released), in which case nothing changed.
        """
        ...

    async def current_lease(self, session_id: SessionId) -> Lease | None:
        """Return the session's lease record, or ``None`` if it was never leased.

        The record may be live, expired or released: :meth:`Lease.is_live` tells whether it
        keeps other holders out.
        """
        ...


class Store(EventStore, LeaseStore, Protocol):
    """An event store with session leases: what every backend implements."""

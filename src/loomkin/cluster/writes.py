"""What a worker's appends did to the log, per session: how far they reached, which were refused.

How this works and why:

* A worker that was cut off (a partition, a paused VM, SIGSTOP) may wake up after another
  worker took its sessions over, and its agents go on where they were: their next appends
  carry the old fencing epoch, and the store refuses them
  (:class:`~loomkin.errors.StaleEpoch`). Whether that really happened, and that none of its
  late writes landed, is what a partition test and the failover bench must check from the
  outside; the events themselves never reach the log, so only the writer can tell.
* :class:`LedgerStore` wraps the store a hosted session's runtime writes through and records,
  in a :class:`WriteLedger` the worker's owner passes in :class:`~loomkin.cluster.HostOptions`,
  the newest position each session's appends reached and the event ids of every append the
  store refused for a stale fence. Everything else goes straight to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.errors import StaleEpoch

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.events import NewEvent, RecordedEvent
    from loomkin.core.store import CheckReport, Fence, Lease, Store
    from loomkin.ids import SessionId

__all__ = ["LedgerStore", "SessionWrites", "WriteLedger"]


@dataclass(slots=True)
class SessionWrites:
    """One session's appends made by this worker."""

    written_from: int = 0
    """The oldest position an append of this worker wrote (0: none)."""
    written_to: int = 0
    """The newest position an append of this worker reached (0: none)."""
    refused_appends: int = 0
    """Appends (store transactions) refused because this worker's fence was stale."""
    refused: list[str] = field(default_factory=list)
    """Event ids of those appends (of this session)."""


@dataclass(slots=True)
class WriteLedger:
    """Per session id, what this worker's appends did (see the module docstring)."""

    sessions: dict[str, SessionWrites] = field(default_factory=dict)

    def of(self, session_id: str) -> SessionWrites:
        """The record of ``session_id`` (empty when this worker never wrote it)."""
        return self.sessions.setdefault(session_id, SessionWrites())


class LedgerStore:
    """A :class:`~loomkin.core.store.Store` that records its appends in ``ledger``."""

    def __init__(self, store: Store, ledger: WriteLedger) -> None:
        self._store = store
        self._ledger = ledger

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_versions: Mapping[str, int] | None = None,
        fences: Sequence[Fence] = (),
    ) -> list[RecordedEvent]:
        try:
            recorded = await self._store.append(
                events, expected_versions=expected_versions, fences=fences
            )
        except StaleEpoch as exc:
            writes = self._ledger.of(exc.session_id)
            writes.refused_appends += 1
            sid = exc.session_id
            writes.refused.extend(str(n.event_id) for n in events if n.event.session_id == sid)
            raise
        for event in recorded:
            writes = self._ledger.of(event.event.session_id)
            writes.written_from = writes.written_from or event.position
            writes.written_to = max(writes.written_to, event.position)
        return recorded

    async def read(
        self, after: int = 0, *, limit: int | None = None, session_id: str | None = None
    ) -> list[RecordedEvent]:
        return await self._store.read(after, limit=limit, session_id=session_id)

    async def read_stream(self, stream: str, after: int = 0) -> list[RecordedEvent]:
        return await self._store.read_stream(stream, after)

    async def last_position(self) -> int:
        return await self._store.last_position()

    async def check(self) -> CheckReport:
        return await self._store.check()

    async def close(self) -> None:
        await self._store.close()

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
        return await self._store.acquire_lease(
            session_id, holder, ttl_s=ttl_s, host=host, pid=pid, take_over=take_over, now=now
        )

    async def renew_lease(
        self, lease: Lease, *, ttl_s: float | None = None, now: float | None = None
    ) -> Lease:
        return await self._store.renew_lease(lease, ttl_s=ttl_s, now=now)

    async def release_lease(self, lease: Lease, *, now: float | None = None) -> bool:
        return await self._store.release_lease(lease, now=now)

    async def current_lease(self, session_id: SessionId) -> Lease | None:
        return await self._store.current_lease(session_id)

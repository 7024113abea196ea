"""Session leases: while a runtime hosts a session, it is the session's only writer.

How this works and why:

* **Acquire before replay.** Opening or resuming a session first takes the session's lease in
  the store (:meth:`SessionLeases.acquire`), then reads its history. So every event another
  process committed before is in the replay, and any it tries to commit afterwards is refused
  by the store (its fence is stale): two processes never both drive one session's agents.
* **Fenced appends.** The lease's fence is handed to the event log, which passes it with every
  append of the session's events; the store checks it in the insert's transaction.
* **Renewed under the timers supervisor** every third of the TTL. A holder that dies stops
  renewing, and its lease expires after the TTL; a holder on *this* host whose process is gone
  (``kill -9``, a crash) is taken over at once, since it can no longer write. ``take_over``
  takes the lease from a live holder too (its next append or renewal is refused).
* **Losing it.** When a renewal or an append finds the lease taken over, the session is lost
  to this runtime: its agents are stopped at once (``on_lost``), later appends are refused
  with the same :class:`~loomkin.errors.StaleEpoch`, and :meth:`SessionLeases.lost` tells the
  session handle, which raises it from ``wait_idle``. Other sessions go on.
* **Released on close**, so the next process may resume at once.

The holder id is a fresh uuid per runtime, stored with this host's name and pid: the message
a second process gets (:class:`~loomkin.errors.LeaseHeld`) names all three.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.errors import LeaseHeld, StaleEpoch, StoreError, UserError
from loomkin.ids import SessionId

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.store import Lease, LeaseStore
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.supervisor import Supervisor

__all__ = ["DEFAULT_LEASE_TTL_S", "SessionLeases"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_S = 15.0
"""How long a session's lease outlives its holder's last renewal (renewed every third)."""


class SessionLeases:
    """The leases of the sessions one runtime hosts (see the module docstring).

    Args:
        store: Where the leases live (the runtime's store).
        log: The event log that carries each session's fence.
        timers: Owns the renewal tasks.
        ttl_s: Lease time to live in seconds.
        on_lost: Called (synchronously) when a session's lease was taken over.
    """

    def __init__(
        self,
        store: LeaseStore,
        log: EventLog,
        timers: Supervisor,
        *,
        ttl_s: float = DEFAULT_LEASE_TTL_S,
        on_lost: Callable[[SessionId, StaleEpoch], None],
    ) -> None:
        if ttl_s <= 0:
            raise UserError(f"the lease TTL must be positive, got {ttl_s}")
        self.holder = f"loomkin-{uuid.uuid4().hex}"
        """This runtime's holder id (with its host and pid in every lease it takes)."""
        self._store = store
        self._log = log
        self._timers = timers
        self._ttl_s = ttl_s
        self._on_lost = on_lost
        self._leases: dict[SessionId, Lease] = {}
        self._lost: dict[SessionId, StaleEpoch] = {}

    async def acquire(self, session_id: SessionId, *, take_over: bool = False) -> Lease:
        """Take the session's lease, fence its appends and keep the lease renewed.

        Raises:
            LeaseHeld: another live process holds it (the message names the holder) and
                ``take_over`` is not set.
        """
        try:
            lease = await self._take(session_id, take_over=take_over)
        except LeaseHeld as held:
            if not await asyncio.to_thread(_holder_gone, held):
                raise
            logger.warning(
                "session %s: its holder %s (pid %d on this host) is gone; taking it over",
                session_id,
                held.holder,
                held.pid,
            )
            lease = await self._take(session_id, take_over=True)
        self._leases[session_id] = lease
        self._lost.pop(session_id, None)
        self._log.fence(lease.fence)
        self._timers.run(f"lease:{session_id}", lambda: self._keep(session_id))
        return lease

    async def _take(self, session_id: SessionId, *, take_over: bool) -> Lease:
        return await self._store.acquire_lease(
            session_id, self.holder, ttl_s=self._ttl_s, take_over=take_over
        )

    async def _keep(self, session_id: SessionId) -> None:
        """Renew the lease every third of its TTL until it is released or lost."""
        while True:
            await asyncio.sleep(self._ttl_s / 3)
            lease = self._leases.get(session_id)
            if lease is None or session_id in self._lost:
                return
            try:
                self._leases[session_id] = await self._store.renew_lease(lease)
            except StaleEpoch as exc:
                self.lose(exc)
                return
            except (StoreError, OSError):
                # Unreachable for now: keep trying; should it expire and be taken meanwhile,
                # the next renewal or append is refused and the session stops then.
                logger.warning("session %s: renewing its lease failed", session_id, exc_info=True)

    def lose(self, exc: StaleEpoch) -> None:
        """The store refused this runtime's fence or renewal: stop the session here."""
        session_id = SessionId(exc.session_id)
        if session_id not in self._leases or session_id in self._lost:
            return
        self._lost[session_id] = exc
        self._log.fence_lost(exc)
        logger.error("session %s was taken over; its agents stop here: %s", session_id, exc)
        self._on_lost(session_id, exc)

    def lost(self, session_id: str) -> StaleEpoch | None:
        """Why this runtime no longer writes ``session_id`` (taken over), or ``None``."""
        return self._lost.get(SessionId(session_id))

    def lease(self, session_id: str) -> Lease | None:
        """The lease this runtime holds on ``session_id``, if any."""
        return self._leases.get(SessionId(session_id))

    async def release(self, session_id: SessionId) -> None:
        """Give the session's lease back so another process may take it at once."""
        lease = self._leases.pop(session_id, None)
        self._log.unfence(session_id)
        await self._timers.cancel(f"lease:{session_id}")
        if lease is not None and session_id not in self._lost:
            try:
                await self._store.release_lease(lease)
            except (StoreError, OSError):
                # It expires after its TTL anyway; the next holder only waits longer.
                logger.warning("session %s: releasing its lease failed", session_id, exc_info=True)

    async def release_all(self) -> None:
        """Release every lease this runtime holds (when it closes)."""
        for session_id in list(self._leases):
            await self.release(session_id)


def _holder_gone(held: LeaseHeld) -> bool:
    """Whether the live-looking holder is a process of this host that no longer runs."""
    if held.host != socket.gethostname():
        return False  # another machine: only its TTL can tell
    try:
        os.kill(held.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return _zombie(held.pid)


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers ``kill(pid, 0)``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may contain spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]

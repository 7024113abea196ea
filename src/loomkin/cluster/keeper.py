"""The stall watchdog of a hosted session's lease: stop the agents once renewals stopped.

How this works and why:

* A worker keeps a session's key-value lease by renewing it every third of the TTL. When no
  renewal got through for ``stall_s`` (by default the TTL), the key has expired and another
  worker may be resuming the session already, so this worker must stop its agents *itself*,
  without waiting to hear so from NATS: it may be cut off from NATS (a partition), or it may
  just wake up from being stopped (SIGSTOP, a paused VM, a loop blocked for that long), with
  its agents' next steps already due. Their appends would be refused by the store's fence
  anyway; stopping them first means they do not even try (and do not run tools).
* The check runs before every renewal and after every failed one, and a renewal gets at most
  the time left until the stall (a request to an unreachable server must not hold it up).
* Time is the event loop's (``loop.time()``), so virtual time works in tests; a process
  stopped with SIGSTOP sees the whole pause at once when it resumes (the loop's monotonic
  clock keeps running).
"""

from __future__ import annotations

import asyncio

from loomkin.cluster.leases import LeaseLost
from loomkin.errors import UserError

__all__ = ["MIN_RENEWAL_S", "RenewalWatch"]

MIN_RENEWAL_S = 0.05
"""The least time a renewal attempt gets (one round trip to a NATS server nearby)."""


class RenewalWatch:
    """When the lease of ``session_id`` was last renewed; raises once that is ``stall_s`` ago.

    Create it on the running loop when the lease is taken (that counts as a renewal).
    """

    def __init__(self, session_id: str, *, stall_s: float) -> None:
        if not stall_s > 0:
            raise UserError(f"the stall limit of a lease must be positive, not {stall_s!r}")
        self._session_id = session_id
        self._stall_s = stall_s
        self._loop = asyncio.get_running_loop()
        self._last_ok = self._loop.time()

    def renewed(self) -> None:
        """A renewal got through now."""
        self._last_ok = self._loop.time()

    def stalled_for(self) -> float:
        """Seconds since the last renewal got through."""
        return self._loop.time() - self._last_ok

    def left(self) -> float:
        """How long the next renewal attempt may take (at least :data:`MIN_RENEWAL_S`)."""
        return max(MIN_RENEWAL_S, self._stall_s - self.stalled_for())

    def check(self, cause: BaseException | None = None) -> None:
        """Raise :class:`LeaseLost` if no renewal got through for ``stall_s`` or more.

        Args:
            cause: why the last attempt failed (named in the message and chained).
        """
        stalled = self.stalled_for()
        if stalled < self._stall_s:
            return
        why = f" (last attempt: {cause})" if cause is not None else ""
        raise LeaseLost(
            f"session {self._session_id}: its lease was not renewed for {stalled:.1f} s "
            f"(limit {self._stall_s:g} s): this worker was stopped or cut off, and another "
            f"may host the session now; its agents stop here{why}"
        ) from cause

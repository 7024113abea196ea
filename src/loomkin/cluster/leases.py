"""Leases in a JetStream key-value bucket: which worker hosts which session's agents.

How this works and why:

* **One key per hosted unit** (a session's agents), created with ``create`` — which succeeds
  for exactly one worker while the key is absent — and kept alive by heartbeats: an
  ``update`` conditioned on the revision the holder last wrote. The bucket's TTL removes a
  key whose holder stopped heartbeating (killed, partitioned), and the next ``create`` wins it.
* **The store's fencing epoch rides along.** The value names the holder and the epoch of the
  store lease it took when it resumed the session (:class:`~loomkin.core.store.Lease`); every
  append the holder makes carries that epoch and Postgres refuses it once a later holder took
  the session (a new epoch). The key-value lease decides *who* should run the agents; the
  store's epoch guarantees that nobody else's writes land, even from a worker that still
  believes it holds the key (a paused VM, a partition that hides the bucket from it).
* **Giving a lease back** deletes the key (conditioned on the revision), so another worker
  takes it at its next look instead of after the TTL. A renewal whose reply was lost leaves
  the holder with an old revision; the delete is then retried at the current one as long as
  the entry still names the holder.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from loomkin.errors import LeaseError

if TYPE_CHECKING:
    from nats.js.errors import APIError
    from nats.js.kv import KeyValue

__all__ = ["BusLease", "BusLeases", "LeaseLost"]


_WRONG_LAST_SEQUENCE = (10071, 10164)
"""JetStream's error codes for a write conditioned on a revision that is not the last."""


def _wrong_last_revision(exc: APIError) -> bool:
    """Whether ``exc`` says the key's last revision is not the one a write named.

    nats-py turns this into ``KeyWrongLastSequenceError`` for ``update`` only; a ``delete``
    raises the plain ``BadRequestError`` carrying the error code.
    """
    from nats.js.errors import KeyWrongLastSequenceError

    return isinstance(exc, KeyWrongLastSequenceError) or exc.err_code in _WRONG_LAST_SEQUENCE


class LeaseLost(LeaseError):
    """The key-value lease is gone or held by another worker: stop hosting now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BusLease:
    """A lease this worker holds in the bucket."""

    key: str
    worker_id: str
    revision: int
    """The bucket revision of the holder's last write (the next heartbeat must match it)."""
    epoch: int = 0
    """The store's fencing epoch of the session while this worker hosts it (0: not yet)."""


class BusLeases:
    """Acquire, heartbeat and release leases in ``kv`` for ``worker_id``."""

    def __init__(self, kv: KeyValue, worker_id: str) -> None:
        self._kv = kv
        self.worker_id = worker_id

    def _value(self, epoch: int) -> bytes:
        return json.dumps(
            {
                "worker": self.worker_id,
                "epoch": epoch,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "at": time.time(),
            }
        ).encode()

    async def acquire(self, key: str) -> BusLease | None:
        """Take ``key`` if nobody holds it; ``None`` if someone does."""
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            revision = await self._kv.create(key, self._value(0))
        except KeyWrongLastSequenceError:
            return None
        return BusLease(key=key, worker_id=self.worker_id, revision=revision)

    async def heartbeat(self, lease: BusLease, *, epoch: int | None = None) -> BusLease:
        """Renew ``lease`` (carrying the store's fencing ``epoch``) for another TTL.

        Raises:
            LeaseLost: the key expired or another worker holds it now.
        """
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        new_epoch = lease.epoch if epoch is None else epoch
        last = lease.revision
        for _ in range(2):
            try:
                revision = await self._kv.update(lease.key, self._value(new_epoch), last=last)
            except (KeyWrongLastSequenceError, KeyNotFoundError) as exc:
                # A write of ours whose acknowledgement was lost moves the revision on: the
                # entry still names this worker (no other writes it), so we still hold it.
                current = await self._entry(lease.key)
                if current is None or current[0].get("worker") != self.worker_id:
                    raise LeaseLost(
                        f"the lease {lease.key!r} of worker {self.worker_id!r} expired or was taken"
                    ) from exc
                last = current[1]
                continue
            return replace(lease, revision=revision, epoch=new_epoch)
        raise LeaseLost(f"the lease {lease.key!r} keeps moving under worker {self.worker_id!r}")

    async def release(self, lease: BusLease) -> bool:
        """Give ``lease`` back at once; ``False`` if it was not ours any more.

        The delete names the revision the holder last wrote. A renewal that landed but whose
        reply was lost moved the key on: if the entry still names this worker (nobody else
        writes it), it is deleted at its current revision, so the hand-over is immediate
        instead of waiting for the TTL. If it is gone or names another worker, it is left.
        """
        from nats.js.errors import APIError

        last = lease.revision
        for _ in range(2):
            try:
                await self._kv.delete(lease.key, last=last)
            except APIError as exc:
                if not _wrong_last_revision(exc):
                    raise
                current = await self._entry(lease.key)
                if current is None or current[0].get("worker") != self.worker_id:
                    return False
                last = current[1]
                continue
            return True
        return False  # it moved again under us: only another writer could have done that

    async def holder(self, key: str) -> dict[str, object] | None:
        """The current holder's record of ``key`` (worker, epoch, host, pid), or ``None``."""
        entry = await self._entry(key)
        return None if entry is None else entry[0]

    async def _entry(self, key: str) -> tuple[dict[str, object], int] | None:
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        if not entry.value or entry.revision is None:
            return None
        record: dict[str, object] = json.loads(entry.value)
        return record, entry.revision

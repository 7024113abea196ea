"""Lease decisions every backend shares: who may acquire, renew, release, and which fences pass.

Each backend reads the session's lease row under its own write lock (SQLite ``BEGIN
IMMEDIATE``, Postgres ``SELECT … FOR UPDATE``, the memory store by not awaiting), asks a
function here what the new row is (or which error to raise), and writes it before unlocking.
Keeping the rules in one place is what makes the three backends agree; the conformance suite
checks that they do.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import TYPE_CHECKING

from loomkin.core.store import Lease, format_time
from loomkin.errors import LeaseHeld, StaleEpoch, UserError
from loomkin.ids import SessionId

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.core.store import Fence

__all__ = [
    "LEASE_COLUMNS",
    "LeaseRow",
    "acquired",
    "check_fences",
    "lease_from_row",
    "lease_row",
    "released",
    "renewed",
]

LEASE_COLUMNS = "session_id, epoch, holder, host, pid, since, expires_at, ttl_s, released"
"""Column order of :data:`LeaseRow` in the ``leases`` table."""
LeaseRow = tuple[str, int, str, str, int, float, float, float, bool]
"""One ``leases`` row in :data:`LEASE_COLUMNS` order."""


def lease_row(lease: Lease) -> LeaseRow:
    """The row that stores ``lease``."""
    return (
        lease.session_id,
        lease.epoch,
        lease.holder,
        lease.host,
        lease.pid,
        lease.since,
        lease.expires_at,
        lease.ttl_s,
        lease.released,
    )


def lease_from_row(row: Sequence[object]) -> Lease:
    """Rebuild a lease from a row in :data:`LEASE_COLUMNS` order."""
    session_id, epoch, holder, host, pid, since, expires_at, ttl_s, is_released = row
    assert isinstance(session_id, str)
    assert isinstance(holder, str)
    assert isinstance(host, str)
    assert isinstance(epoch, int)
    assert isinstance(pid, int)
    assert isinstance(since, float)
    assert isinstance(expires_at, float)
    assert isinstance(ttl_s, float)
    return Lease(
        session_id=SessionId(session_id),
        epoch=epoch,
        holder=holder,
        host=host,
        pid=pid,
        since=since,
        expires_at=expires_at,
        ttl_s=ttl_s,
        released=bool(is_released),
    )


def acquired(
    current: Lease | None,
    session_id: SessionId,
    holder: str,
    *,
    ttl_s: float,
    host: str | None,
    pid: int | None,
    take_over: bool,
    now: float,
) -> Lease:
    """Return the lease ``holder`` gets, one epoch above ``current`` (see ``acquire_lease``).

    Raises:
        LeaseHeld: ``current`` is live, held by someone else, and ``take_over`` is not set.
        UserError: ``ttl_s`` is not a positive number or ``holder`` is empty.
    """
    _check_ttl(ttl_s)
    if not holder:
        raise UserError("a lease holder id must not be empty")
    if current is not None and current.is_live(now) and current.holder != holder and not take_over:
        raise _held(current, now)
    return Lease(
        session_id=session_id,
        epoch=(current.epoch if current is not None else 0) + 1,
        holder=holder,
        host=socket.gethostname() if host is None else host,
        pid=os.getpid() if pid is None else pid,
        since=now,
        expires_at=now + ttl_s,
        ttl_s=ttl_s,
    )


def renewed(current: Lease | None, lease: Lease, *, ttl_s: float | None, now: float) -> Lease:
    """Return ``lease`` extended to ``now + ttl_s`` (default: its own ttl).

    Raises:
        StaleEpoch: ``current`` is not ``lease``'s epoch any more, or was released.
    """
    ttl = lease.ttl_s if ttl_s is None else ttl_s
    _check_ttl(ttl)
    if current is None or current.epoch != lease.epoch or current.released:
        raise _stale(lease.session_id, lease.epoch, current, doing="renew its lease")
    return replace(current, expires_at=now + ttl, ttl_s=ttl)


def released(current: Lease | None, lease: Lease, *, now: float) -> Lease | None:
    """Return ``current`` marked released, or ``None`` if it is not ``lease`` any more."""
    if current is None or current.epoch != lease.epoch or current.released:
        return None
    return replace(current, released=True, expires_at=min(current.expires_at, now))


def check_fences(fences: Sequence[Fence], current: Mapping[str, Lease]) -> None:
    """Raise :class:`StaleEpoch` unless every fence holds its session's current epoch.

    Args:
        fences: the tokens an append carries.
        current: the current lease of (at least) every fenced session; a missing one was
            never leased.
    """
    for fence in fences:
        lease = current.get(fence.session_id)
        if lease is None or lease.epoch != fence.epoch or lease.released:
            raise _stale(fence.session_id, fence.epoch, lease, doing="append")


def _check_ttl(ttl_s: float) -> None:
    # ``not ttl_s > 0`` also refuses NaN, which would make a lease that never expires.
    if not ttl_s > 0 or ttl_s == float("inf"):
        raise UserError(
            f"a lease's ttl_s must be a positive, finite number of seconds, not {ttl_s!r}"
        )


def _held(current: Lease, now: float) -> LeaseHeld:
    return LeaseHeld(
        f"session {current.session_id!r} is being written by another process: "
        f"{current.describe()}, epoch {current.epoch}; its lease expires in "
        f"{current.expires_at - now:.1f} s unless renewed. Stop that process, wait for the "
        "lease to expire, or take the session over",
        session_id=current.session_id,
        holder=current.holder,
        host=current.host,
        pid=current.pid,
        since=current.since,
        expires_at=current.expires_at,
        epoch=current.epoch,
    )


def _stale(session_id: str, epoch: int, current: Lease | None, *, doing: str) -> StaleEpoch:
    if current is None:
        why = "the session was never leased"
    elif current.epoch == epoch:
        why = f"that lease was released at {format_time(current.expires_at)}"
    elif current.epoch < epoch:
        why = f"the session's current epoch is only {current.epoch} (a fence from elsewhere?)"
    else:
        why = f"the session was taken over by {current.describe()} (epoch {current.epoch})"
    return StaleEpoch(
        f"refused to {doing} for session {session_id!r} with lease epoch {epoch}: {why}; "
        "this writer no longer owns the session and must stop",
        session_id=session_id,
        epoch=epoch,
        current_epoch=0 if current is None else current.epoch,
    )

"""Renewing a worker's leases and directory entry from a thread of its own; the stall watchdog.

How this works and why:

* **Heartbeats are not starved by a busy loop.** A worker's event loop runs its agents:
  replaying a long log when it resumes a session, or a burst of work on a loaded machine,
  can keep it from running a heartbeat for longer than the TTL, and it would lose a session
  it is running well (another worker resumes it: a needless move). :class:`LeaseKeeper`
  renews every lease of the worker from one thread with its own event loop and NATS
  connection, which does nothing else. A process that stops (killed, SIGSTOP) stops its
  renewals too, which is what the TTL is for.
* **So is the worker's directory entry.** It expires with the same TTL, and a live worker
  missing from the directory gets no new sessions and looks dead to the others' placement.
  The keeper's thread reports it every third of the TTL, with the latest load the worker's
  loop handed it (:meth:`LeaseKeeper.set_load`: one immutable value, replaced whole), so a
  busy loop only makes the reported load a little older.
* **The stall watchdog.** When no renewal of a lease got through for ``stall_s`` (by default
  the TTL), the key has expired and another worker may be resuming the session already, so
  this worker must stop its agents *itself*, without waiting to hear so from NATS: it may be
  cut off from NATS (a partition), or it may just wake up from being stopped (SIGSTOP, a
  paused VM), with its agents' next steps already due. Their appends would be refused by the
  store's fence anyway; stopping them first means fewer of them even try. Both threads check:
  the keeper after each failed renewal (which gets at most the time left until the stall),
  and the worker's loop every third of the TTL (:meth:`KeptLease.check`), since on waking
  from SIGSTOP either may run first.
* The two threads share only plain attributes of :class:`KeptLease` (atomic in CPython) and
  post wake-ups to each other's loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from loomkin.cluster.bus import connect, open_buckets, stop_if_cancelled
from loomkin.cluster.directory import WorkerDirectory
from loomkin.cluster.leases import BusLeases, LeaseLost
from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from loomkin.cluster.leases import BusLease
    from loomkin.cluster.names import ClusterNames
    from loomkin.cluster.placement import WorkerLoad

__all__ = ["MIN_RENEWAL_S", "KeptLease", "LeaseKeeper"]

logger = logging.getLogger(__name__)

MIN_RENEWAL_S = 0.05
"""The least time a renewal attempt gets (one round trip to a NATS server nearby)."""


class KeptLease:
    """One key-value lease a :class:`LeaseKeeper` renews; shared by the two threads.

    The worker's loop sets the store :attr:`epoch` the renewals carry and checks
    :meth:`check`; the keeper's thread writes the renewed lease and its time, and records a
    loss. Plain attribute reads and writes (atomic in CPython) are all they share, besides
    the wake-ups each posts to the other's loop.
    """

    def __init__(
        self,
        keeper: LeaseKeeper,
        lease: BusLease,
        *,
        stall_s: float,
        changed: asyncio.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not stall_s > 0:
            raise UserError(f"the stall limit of a lease must be positive, not {stall_s!r}")
        self._keeper = keeper
        self._clock = clock
        self.lease = lease
        """The lease as last renewed (its revision is what a release must name)."""
        self.epoch: int | None = None
        """The store's fencing epoch the next renewal carries (``None``: unchanged)."""
        self.stall_s = stall_s
        self.last_ok = clock()
        """When a renewal last got through (by ``clock``, which both threads read)."""
        self.lost: LeaseLost | None = None
        self.changed = changed
        """Set (on the worker's loop) when the lease was lost."""
        self._owner = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        """Set on the keeper's loop only (it binds to the loop that first waits on it)."""
        self._task: asyncio.Task[None] | None = None

    def stalled_for(self) -> float:
        """Seconds since the last renewal got through."""
        return self._clock() - self.last_ok

    def check(self) -> None:
        """Raise :class:`LeaseLost` if the lease was lost, or not renewed for ``stall_s``.

        The second covers a keeper that could not tell yet: on waking from SIGSTOP both
        threads resume at once, and the worker's loop may get here first.
        """
        if self.lost is not None:
            raise self.lost
        if self.stalled_for() >= self.stall_s:
            raise self._stalled()

    def _stalled(self, detail: str = "") -> LeaseLost:
        return LeaseLost(
            f"session {self.lease.key}: its lease was not renewed for {self.stalled_for():.1f} s "
            f"(limit {self.stall_s:g} s): this worker was stopped or cut off, and another "
            f"may host the session now; its agents stop here{detail}"
        )

    def renew_now(self, epoch: int | None) -> None:
        """Renew at once, carrying ``epoch`` (the store's, once the session is resumed)."""
        if epoch is not None:
            self.epoch = epoch
        self._keeper.call(self._poke)

    def _poke(self) -> None:
        self._wake.set()

    def _lose(self, exc: LeaseLost) -> None:  # on the keeper's thread
        self.lost = exc
        self._owner.call_soon_threadsafe(self.changed.set)

    async def stop(self) -> BusLease:
        """Stop renewing; return the lease as last renewed (to release it)."""
        await self._keeper.run(self._stop())
        return self.lease

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _keep(self, ttl_s: float) -> None:  # on the keeper's thread
        wake = self._wake
        leases = self._keeper.leases
        while True:
            stop_if_cancelled()  # stop() may have come with a renewal's reply (see there)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ttl_s / 3):
                    await wake.wait()
            wake.clear()
            try:
                async with asyncio.timeout(max(MIN_RENEWAL_S, self.stall_s - self.stalled_for())):
                    self.lease = await leases.heartbeat(self.lease, epoch=self.epoch)
                self.last_ok = self._clock()
            except LeaseLost as exc:
                self._lose(exc)
                return
            except Exception as exc:
                if self.stalled_for() >= self.stall_s:
                    self._lose(self._stalled(f" (last attempt: {exc!r})"))
                    return
                logger.warning("lease %s: renewal failed: %s", self.lease.key, exc)


class LeaseKeeper:
    """Renews a worker's key-value leases from a thread with its own loop and NATS connection.

    The worker's event loop runs its agents: replaying a long log when it resumes a session,
    or a burst of work on a loaded machine, can keep it from running a heartbeat for longer
    than the TTL, and the worker would lose a session it is running well. The keeper's thread
    does nothing else, so its renewals go out on time while the process runs; a process that
    stops (killed, SIGSTOP) stops them too, which is what the TTL is for. It reports the
    worker's directory entry the same way (:meth:`report`).
    """

    def __init__(self, bus_url: str, names: ClusterNames, worker_id: str, *, ttl_s: float) -> None:
        self._bus_url = bus_url
        self._names = names
        self._worker_id = worker_id
        self._ttl_s = ttl_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._leases: BusLeases | None = None
        self._directory: WorkerDirectory | None = None
        self._load: WorkerLoad | None = None
        """What the directory reports say (replaced whole by the worker's loop)."""
        self._reporter: asyncio.Task[None] | None = None
        """Reports the directory entry every third of the TTL (on the keeper's loop)."""
        self._closing = False

    @property
    def leases(self) -> BusLeases:
        assert self._leases is not None, "the lease keeper is not started"
        return self._leases

    async def start(self) -> None:
        """Start the thread and connect it; return once it renews.

        Raises:
            BusUnavailable: the NATS server cannot be reached (from the thread).
        """
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(ready),),
            name=f"lease-keeper:{self._worker_id}",
            daemon=True,  # a worker that exits without close() must not hang on it
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            await self.close()  # given up on (cancelled): the thread must not stay connected
            raise

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        if not ready.set_running_or_notify_cancel():
            return  # start() was cancelled before this thread ran
        try:
            nc = await connect(self._bus_url, name=f"{self._worker_id}:leases")
        except BaseException as exc:
            ready.set_exception(exc)
            return
        try:
            buckets = await open_buckets(nc.jetstream(), self._names, ttl_s=self._ttl_s)
            self._leases = BusLeases(buckets.leases, self._worker_id)
            self._directory = WorkerDirectory(buckets.workers)
            self._loop = asyncio.get_running_loop()
            self._stop = stop = asyncio.Event()
            if self._closing:  # close() came before there was a loop to tell
                stop.set()
        except BaseException as exc:
            await nc.close()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            await stop.wait()
        finally:
            await self._stop_reporting()
            await nc.close()

    def keep(self, lease: BusLease, *, stall_s: float, changed: asyncio.Event) -> KeptLease:
        """Renew ``lease`` every third of the TTL from now on (call on the worker's loop).

        ``changed`` is set on the worker's loop when the lease is lost.
        """
        kept = KeptLease(self, lease, stall_s=stall_s, changed=changed)

        def begin() -> None:
            assert self._loop is not None
            kept._task = self._loop.create_task(kept._keep(self._ttl_s), name=f"keep:{lease.key}")

        self.call(begin)
        return kept

    def set_load(self, load: WorkerLoad) -> None:
        """The load the next directory reports carry (from any thread: one value, replaced)."""
        self._load = load

    async def report(self, load: WorkerLoad) -> None:
        """Put the worker's directory entry now, then every third of the TTL, from this thread.

        Each report carries the latest :meth:`set_load`, until :meth:`stop_reporting`.

        Raises:
            Exception: the first report failed (later ones are retried, and logged).
        """
        self._load = load
        await self.run(self._report_first())

    async def stop_reporting(self) -> None:
        """No more directory reports (before the worker takes its entry out)."""
        await self.run(self._stop_reporting())

    async def _report_first(self) -> None:  # on the keeper's thread
        await self._report_once()
        if self._reporter is None:
            self._reporter = asyncio.get_running_loop().create_task(
                self._report_loop(), name=f"report:{self._worker_id}"
            )

    async def _report_once(self) -> None:  # on the keeper's thread
        directory, load = self._directory, self._load
        assert directory is not None, "the lease keeper is not started"
        assert load is not None, "nothing to report yet"
        async with asyncio.timeout(self._ttl_s / 3):  # a report late by more is no use
            await directory.report(load, host=socket.gethostname(), pid=os.getpid())

    async def _report_loop(self) -> None:  # on the keeper's thread
        while True:
            stop_if_cancelled()  # stop_reporting() may have come with a reply (see there)
            await asyncio.sleep(self._ttl_s / 3)
            try:
                await self._report_once()
            except Exception as exc:  # NATS away: the next report tries again
                logger.warning("worker %s: reporting its load failed: %r", self._worker_id, exc)

    async def _stop_reporting(self) -> None:  # on the keeper's thread
        task, self._reporter = self._reporter, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the keeper's loop (soon; from any thread)."""
        assert self._loop is not None, "the lease keeper is not started"
        self._loop.call_soon_threadsafe(fn)

    async def run(self, coro: Coroutine[object, object, None]) -> None:
        """Run ``coro`` on the keeper's loop and wait for it here (not if it is closed)."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._thread is None:
            coro.close()  # closed: nothing of it runs any more
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def close(self) -> None:
        """Stop renewing everything, disconnect and end the thread."""
        self._closing = True
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(thread.join, 10)

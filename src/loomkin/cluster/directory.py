"""The cluster's directory: live workers with their load, and the sessions it keeps running.

Both are JetStream key-value buckets. A worker's entry expires with the lease TTL unless the
worker reports again (every third of it), so the live workers are the entries present. A
placement (one per session the cluster runs) has no TTL: it says the session must be hosted
somewhere until it is done, which is how a surviving worker knows to take over a dead one's
sessions.

The reports double as the workers' liveness beat. A ``put`` is a message on the entry's
subject, so a host that follows them (:meth:`WorkerDirectory.follow`, one subscription per
process) knows when it last heard from each worker without reading anything: a silent call
on a worker heard from lately need not read its agent's lease (see ``cluster.agents``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.cluster.placement import WorkerLoad

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.kv import KeyValue

__all__ = ["Placement", "Placements", "WorkerDirectory"]

PlacementStatus = Literal["running", "done"]


async def _keys(kv: KeyValue) -> list[str]:
    from nats.js.errors import NoKeysError

    try:
        return list(await kv.keys())
    except NoKeysError:
        return []


async def _get(kv: KeyValue, key: str) -> bytes | None:
    from nats.js.errors import KeyDeletedError, KeyNotFoundError

    try:
        entry = await kv.get(key)
    except (KeyNotFoundError, KeyDeletedError):
        return None
    return entry.value or None


_GONE = frozenset({"DEL", "PURGE"})
"""``KV-Operation`` headers of a removed entry (a worker that shut down)."""


class WorkerDirectory:
    """Live workers and their load (entries in the workers bucket)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._heard: dict[str, float] = {}
        """When each worker's last report was heard (the event loop's clock)."""
        self._following: Subscription | None = None
        self._prefix = ""
        self.reports_heard = 0
        """Reports heard since :meth:`follow` (tests and benchmarks)."""

    async def follow(self, nc: Client, subject: str) -> None:
        """Hear every worker's reports as they are written, on ``subject`` (a wildcard).

        ``subject``: :attr:`~loomkin.cluster.names.ClusterNames.every_worker_report`. One
        subscription serves every session this process hosts; once is enough.
        """
        if self._following is not None:
            return
        self._prefix = subject.removesuffix("*")
        self._following = await nc.subscribe(subject, cb=self._on_report)

    async def unfollow(self) -> None:
        """Stop hearing reports (every worker counts as not heard from)."""
        following, self._following = self._following, None
        self._heard.clear()
        if following is not None:
            await following.unsubscribe()

    async def _on_report(self, msg: Msg) -> None:
        worker_id = msg.subject.removeprefix(self._prefix)
        if msg.headers and msg.headers.get("KV-Operation") in _GONE:
            self._heard.pop(worker_id, None)  # it left the directory: not heard from
            return
        self.reports_heard += 1
        self._heard[worker_id] = asyncio.get_running_loop().time()

    def lapsed(self, worker_id: str, *, after_s: float) -> bool:
        """Whether no report of ``worker_id`` was heard in the last ``after_s`` seconds.

        Also true of a worker never heard from, or that left, and of every worker while
        this directory does not :meth:`follow` the reports: the caller then reads.
        """
        heard = self._heard.get(worker_id)
        return heard is None or asyncio.get_running_loop().time() - heard > after_s

    async def report(self, load: WorkerLoad, *, host: str, pid: int) -> None:
        """Publish ``load`` as the worker's current entry (it expires after the TTL)."""
        record = {**asdict(load), "host": host, "pid": pid, "at": time.time()}
        await self._kv.put(load.worker_id, json.dumps(record).encode())

    async def remove(self, worker_id: str) -> None:
        """Take the worker out of the directory (it shuts down)."""
        await self._kv.delete(worker_id)

    async def live(self) -> list[WorkerLoad]:
        """Every worker whose entry has not expired, with its last reported load."""
        loads = []
        for key in await _keys(self._kv):
            raw = await _get(self._kv, key)
            if raw is None:
                continue
            record = json.loads(raw)
            loads.append(
                WorkerLoad(
                    worker_id=str(record["worker_id"]),
                    agents=int(record["agents"]),
                    sessions=int(record["sessions"]),
                    capacity=int(record["capacity"]),
                    accepting=bool(record["accepting"]),
                )
            )
        return loads


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """A session the cluster runs, as recorded in the placements bucket."""

    session_id: str
    status: PlacementStatus = "running"
    agents: int = 1
    """Agents the session had when last reported (the weight for placing it)."""
    worker_id: str = ""
    """The worker that last hosted it."""
    hosts: tuple[str, ...] = ()
    """Every worker that hosted it, in order (a failover adds one)."""
    approve_all: bool = False
    """Opened with ``--yes``: every permission is granted (also after a failover)."""


class Placements:
    """The sessions the cluster must keep hosted until they are done."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def put(self, placement: Placement) -> None:
        """Record ``placement`` (replacing the session's previous record)."""
        record = {**asdict(placement), "hosts": list(placement.hosts)}
        await self._kv.put(placement.session_id, json.dumps(record).encode())

    async def get(self, session_id: str) -> Placement | None:
        """The session's record, or ``None`` if the cluster never ran it."""
        raw = await _get(self._kv, session_id)
        if raw is None:
            return None
        record = json.loads(raw)
        return Placement(
            session_id=str(record["session_id"]),
            status="done" if record["status"] == "done" else "running",
            agents=int(record["agents"]),
            worker_id=str(record["worker_id"]),
            hosts=tuple(str(h) for h in record["hosts"]),
            approve_all=bool(record.get("approve_all", False)),
        )

    async def all(self) -> list[Placement]:
        """Every recorded session (running or done)."""
        found = []
        for key in await _keys(self._kv):
            placement = await self.get(key)
            if placement is not None:
                found.append(placement)
        return found

    async def running(self) -> list[Placement]:
        """The sessions that must be hosted somewhere."""
        return [p for p in await self.all() if p.status == "running"]

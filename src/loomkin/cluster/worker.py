"""A worker: a process that hosts the agents of any session of a cluster.

How this works and why:

* **Directory.** A worker reports its load (agents and sessions hosted, capacity) in the
  workers bucket every third of the TTL; its entry expires with the TTL when it dies, so the
  entries present are the live workers, and :func:`~loomkin.cluster.placement.place` picks
  among them. The reports go out from the lease keeper's thread (as the lease renewals do),
  so a busy loop cannot let the entry of a live worker expire; the loop only hands it the
  latest load.
* **New sessions** arrive as requests on the worker's ``open`` subject (sent by ``loomkin
  run --bus`` to the worker placement chose); the worker opens the session, takes its lease,
  records its placement and answers with the session's id.
* **Failover.** Every ``scan_s`` (and at once when a lease is given back) the worker looks
  for placed sessions that are still running and have no lease: their worker died (its
  lease expired) or shut down. The live workers are ranked by
  :func:`~loomkin.cluster.placement.placement_order`; a worker waits ``rank × claim_step_s``
  before it tries to take the lease, so the least-loaded one normally gets it and the others
  find it taken. The key-value ``create`` makes sure only one does either way.
* **Graceful shutdown** stops taking work, closes each hosted session's runtime (its agents
  stop, the store lease is released) and deletes its lease, then says so on the handover
  subject: the other workers resume the sessions at once instead of after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from loomkin.cluster.bus import connect, open_buckets, stop_if_cancelled
from loomkin.cluster.directory import Placement, Placements, WorkerDirectory
from loomkin.cluster.executor import AgentExecutor
from loomkin.cluster.hosting import HostedSession, HostOptions, Outcome
from loomkin.cluster.keeper import LeaseKeeper
from loomkin.cluster.leases import BusLease, BusLeases
from loomkin.cluster.names import DEFAULT_CLUSTER, ClusterNames, token
from loomkin.cluster.placement import WorkerLoad, placement_order
from loomkin.errors import LoomkinError, UserError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

__all__ = ["DEFAULT_LEASE_TTL_S", "Worker"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_S = 10.0
"""How long a dead worker's leases outlive it (heartbeats every third of it)."""


class Worker:
    """Hosts agents of the cluster's sessions (see the module docstring).

    Args:
        bus_url: The NATS server (``nats://host:4222``).
        options: How sessions are hosted (store URL, TTL, models, settings).
        cluster: The cluster's name (its buckets and subjects).
        worker_id: This worker's id (default: a new one).
        capacity: Agents it is meant to host (a placement weight).
        scan_s: How often it looks for sessions without a live lease.
        claim_step_s: How much longer each rank waits before it tries to take one.
    """

    def __init__(
        self,
        bus_url: str,
        options: HostOptions,
        *,
        cluster: str = DEFAULT_CLUSTER,
        worker_id: str | None = None,
        capacity: int = 100,
        scan_s: float = 0.5,
        claim_step_s: float = 0.25,
    ) -> None:
        if capacity < 1:
            raise UserError(f"a worker's capacity must be at least 1 agent, got {capacity}")
        self.worker_id = token(worker_id or f"worker-{uuid.uuid4().hex[:12]}")
        self.names = ClusterNames(cluster)
        self._bus_url = bus_url
        self._options = options
        self._capacity = capacity
        self._scan_s = scan_s
        self._claim_step_s = claim_step_s
        self._nc: Client | None = None
        self._leases: BusLeases | None = None
        self._placements: Placements | None = None
        self._directory: WorkerDirectory | None = None
        self._keeper: LeaseKeeper | None = None
        """Renews the hosted sessions' leases from its own thread (see ``cluster.keeper``)."""
        self.executor: AgentExecutor | None = None
        """Runs the model calls of agents (of any session) leased to this worker."""
        self._hosted: dict[str, HostedSession] = {}
        """The sessions hosted here by id; one being opened is under a key ``-N`` until then."""
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}
        self._opening: set[asyncio.Task[str]] = set()
        """Sessions being opened (awaited, then handed over, by :meth:`close`)."""
        self._opened = 0
        self._loops: list[asyncio.Task[None]] = []
        """The load and scan loops (cancelled and awaited in :meth:`close`)."""
        self._accepting = True
        self._wake = asyncio.Event()
        self.outcomes: dict[str, list[Outcome]] = {}
        """How hosting each session ended here, in order (for tests and benchmarks)."""

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "the worker is not started"
        return self._nc

    async def start(self) -> None:
        """Connect, join the directory, take requests and start looking for work."""
        # The model SDKs take seconds to import on a busy machine, and an import blocks the
        # event loop: done now, before this worker holds a lease that must be renewed. Not
        # when every model comes from the options' factory (tests, benchmarks): never used.
        if self._options.model_factory is None:
            await asyncio.to_thread(_warm_imports)
        self._nc = nc = await connect(self._bus_url, name=self.worker_id)
        buckets = await open_buckets(nc.jetstream(), self.names, ttl_s=self._options.ttl_s)
        self._leases = BusLeases(buckets.leases, self.worker_id)
        self._placements = Placements(buckets.placements)
        self._directory = WorkerDirectory(buckets.workers)
        if self._options.place_agents:  # the hosted sessions' silent calls ask it who lives
            await self._directory.follow(nc, self.names.every_worker_report)
        self._keeper = LeaseKeeper(self._bus_url, self.names, self.worker_id, ttl_s=buckets.ttl_s)
        await self._keeper.start()
        self.executor = AgentExecutor(
            nc=nc,
            names=self.names,
            worker_id=self.worker_id,
            leases=self._leases,
            keeper=self._keeper,
            options=self._options,
            accepting=lambda: self._accepting,
            load=lambda: self.load().agents,
        )
        await self.executor.start()
        await self._keeper.report(self.load())
        await nc.subscribe(self.names.worker_open(self.worker_id), cb=self._on_open)
        await nc.subscribe(self.names.handover, cb=self._on_handover)
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._load_loop(), name=f"{self.worker_id}:load"),
            loop.create_task(self._scan_loop(), name=f"{self.worker_id}:scan"),
        ]

    def load(self) -> WorkerLoad:
        """What this worker reports about itself."""
        # An agent counts where its calls run: on the worker it is leased to, or on its
        # session's host when the session does not place its agents. A session whose agents
        # run elsewhere still costs its host one agent's share (the loops, the log, the
        # projections): without it a worker hosting many sessions looked idle to placement.
        placed = self.executor.agents() if self.executor is not None else 0
        here = sum(h.agents() for h in self._hosted.values() if h.placer is None)
        hosting = sum(1 for h in self._hosted.values() if h.placer is not None)
        return WorkerLoad(
            worker_id=self.worker_id,
            agents=placed + here + hosting,
            sessions=len(self._hosted),
            capacity=self._capacity,
            accepting=self._accepting,
        )

    def hosted(self) -> list[str]:
        """Ids of the sessions hosted here now (not those still being opened)."""
        return [sid for sid in self._hosted if not sid.startswith("-")]

    async def hosting_nothing(self) -> None:
        """Return once this worker hosts no session (each finished, moved or was handed over)."""
        while tasks := list(self._tasks.values()):
            await asyncio.wait(tasks)

    def _share_load(self) -> None:
        """Hand the current load to the keeper's thread, which reports it in the directory."""
        if self._keeper is not None:
            self._keeper.set_load(self.load())

    async def _load_loop(self) -> None:
        # The agents of a hosted session come and go without telling the worker: their
        # count is taken again every third of the TTL (and whenever a session comes or goes).
        while True:
            await asyncio.sleep(self._options.ttl_s / 3)
            self._share_load()

    async def _on_handover(self, _msg: Msg) -> None:
        self._wake.set()

    async def _scan_loop(self) -> None:
        while True:
            stop_if_cancelled()  # close() may have come with a reply to the scan (see there)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._scan_s):
                    await self._wake.wait()
            self._wake.clear()
            if not self._accepting:
                continue
            try:
                await self.scan()
            except Exception as exc:
                logger.warning("worker %s: looking for work failed: %s", self.worker_id, exc)

    async def scan(self) -> list[str]:
        """Take the running sessions that have no lease, by rank; return those taken."""
        assert self._placements is not None
        assert self._leases is not None
        assert self._directory is not None
        orphans = [
            p
            for p in await self._placements.running()
            if p.session_id not in self._hosted and await self._leases.holder(p.session_id) is None
        ]
        if not orphans:
            return []
        live = {w.worker_id: w for w in await self._directory.live()}
        taken = []
        waited = 0.0
        for placement in orphans:
            live[self.worker_id] = self.load()
            order = [
                w.worker_id for w in placement_order(list(live.values()), agents=placement.agents)
            ]
            rank = order.index(self.worker_id) if self.worker_id in order else len(order)
            if rank * self._claim_step_s > waited:
                await asyncio.sleep(rank * self._claim_step_s - waited)
                waited = rank * self._claim_step_s
            # close() may have begun since the scan did (and its cancellation may have been
            # lost in a reply, see stop_if_cancelled): a closing worker takes nothing more, or
            # it would host a session nobody closes, its lease given back by close() itself.
            stop_if_cancelled()
            if self._closing():
                break
            lease = await self._leases.acquire(placement.session_id)
            if lease is None:
                continue
            logger.info(
                "worker %s: takes over session %s (rank %d)",
                self.worker_id,
                placement.session_id,
                rank,
            )
            hosted = self._hosting(placement, lease)
            try:
                await hosted.resume()
            except BaseException:
                await hosted.abort()
                self._hosted.pop(placement.session_id, None)
                raise
            if self._closing():  # closed while it resumed: give it back at once
                await hosted.abort()
                self._hosted.pop(placement.session_id, None)
                break
            self._start(hosted)
            taken.append(placement.session_id)
        return taken

    def _closing(self) -> bool:
        return not self._accepting

    def _hosting(
        self, placement: Placement, lease: BusLease, *, key: str | None = None
    ) -> HostedSession:
        assert self._placements is not None
        assert self._leases is not None
        assert self._keeper is not None
        hosted = HostedSession(
            nc=self.nc,
            names=self.names,
            leases=self._leases,
            placements=self._placements,
            options=self._options,
            lease=lease,
            placement=placement,
            keeper=self._keeper,
            directory=self._directory,
        )
        self._hosted[key or placement.session_id] = hosted
        return hosted

    def _start(self, hosted: HostedSession) -> None:
        task = asyncio.get_running_loop().create_task(
            hosted.host(), name=f"host:{hosted.session_id}"
        )
        self._tasks[hosted.session_id] = task
        task.add_done_callback(functools.partial(self._ended, hosted))
        self._share_load()

    def _ended(self, hosted: HostedSession, task: asyncio.Task[Outcome]) -> None:
        sid = hosted.session_id
        if self._tasks.get(sid) is task:
            del self._tasks[sid]
            self._hosted.pop(sid, None)
            self._share_load()
        if task.cancelled():
            self.outcomes.setdefault(sid, []).append("released")
        elif (exc := task.exception()) is not None:
            logger.error("worker %s: hosting %s failed", self.worker_id, sid, exc_info=exc)
            self.outcomes.setdefault(sid, []).append("lost")
        else:
            self.outcomes.setdefault(sid, []).append(task.result())

    async def _on_open(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            session_id = await self.open_session(
                str(request["project"]),
                goal=str(request.get("goal") or ""),
                model=request.get("model") or None,
                title=str(request.get("title") or ""),
                approve_all=bool(request.get("approve_all")),
            )
            answer = {"ok": True, "session_id": session_id, "worker": self.worker_id}
        except (LoomkinError, ValueError, KeyError, OSError) as exc:
            answer = {"ok": False, "error": str(exc)}
        await msg.respond(json.dumps(answer).encode())

    async def open_session(
        self, project: str, *, goal: str, model: str | None, title: str, approve_all: bool
    ) -> str:
        """Open a new session here, host its agents, and return its id.

        A :meth:`close` that comes meanwhile waits for the open to end and then hands the
        session over like those hosted here, so it is neither lost nor left running.

        Raises:
            UserError: this worker is shutting down, or it closed before the open could
                finish (the session, if recorded already, is handed over).
        """
        if not self._accepting:
            raise UserError(f"worker {self.worker_id} is shutting down")
        task = asyncio.get_running_loop().create_task(
            self._open(project, goal=goal, model=model, title=title, approve_all=approve_all),
            name=f"{self.worker_id}:open",
        )
        self._opening.add(task)  # owned by close() too: the caller may give up on it
        task.add_done_callback(self._opening.discard)
        try:
            return await task  # a cancelled caller cancels the open
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                raise UserError(
                    f"worker {self.worker_id} shut down before the session was opened"
                ) from None
            raise

    async def _open(
        self, project: str, *, goal: str, model: str | None, title: str, approve_all: bool
    ) -> str:
        assert self._leases is not None
        self._opened += 1
        key = f"-{self._opened}"  # its id is not known yet (see _hosted)
        placement = Placement(session_id="-", approve_all=approve_all)
        hosted = self._hosting(
            placement, BusLease(key="", worker_id=self.worker_id, revision=0), key=key
        )
        try:
            session_id = await hosted.open_new(project, goal=goal, model=model, title=title)
        except BaseException:
            self._hosted.pop(key, None)
            await hosted.abort()
            raise
        del self._hosted[key]
        if self._closing():
            # close() began while it opened: the session is placed, so hand it over at once
            # (the lease given back, said on the handover subject) as close() does the rest.
            await hosted.abort()
            self.outcomes.setdefault(session_id, []).append("released")
            return session_id
        self._hosted[session_id] = hosted
        self._start(hosted)
        return session_id

    async def close(self) -> None:
        """Hand every hosted session over (at once) and leave the cluster."""
        self._accepting = False
        self._share_load()
        # Hosts place no more agents here from now (the directory said it accepts work).
        if self._keeper is not None:
            with contextlib.suppress(Exception):  # NATS away: the entry expires in a TTL anyway
                async with asyncio.timeout(_REPORT_ON_CLOSE_S):
                    await self._keeper.report(self.load())
        tasks: list[asyncio.Task[Any]] = [*self._loops, *self._tasks.values()]
        for task in tasks:
            task.cancel()
        # Sessions being opened are left to finish (they see the worker closing and hand
        # the session over): cancelling one midway could leave it recorded without its goal.
        opening: set[asyncio.Task[Any]] = set(self._opening)
        stuck: set[asyncio.Task[Any]] = set()
        if tasks or opening:
            # Bounded: a task stuck on the bus must not keep the worker from leaving; closing
            # the connection below fails its pending request, and it is awaited again then.
            _, stuck = await asyncio.wait([*tasks, *opening], timeout=_CLOSE_WAIT_S)
        if stuck_opening := stuck & opening:
            # Still opening: cancelled, and given the time to give its lease back while the
            # bus is still connected.
            for task in stuck_opening:
                task.cancel()
            _, still = await asyncio.wait(stuck_opening, timeout=_CLOSE_WAIT_S)
            stuck = (stuck - stuck_opening) | still
        self._loops = []
        executor, self.executor = self.executor, None
        try:
            if executor is not None:  # its agents go back at once: their hosts place them again
                await executor.close()
            await self._leave(stuck)
        finally:
            keeper, self._keeper = self._keeper, None
            if keeper is not None:  # after the hosted sessions: they stop their leases on it
                await keeper.close()

    async def _leave(self, stuck: set[asyncio.Task[Any]]) -> None:
        nc, self._nc = self._nc, None
        if nc is None:
            return
        try:
            if self._keeper is not None:  # or a late report would put the entry back
                await self._keeper.stop_reporting()
            if self._directory is not None:
                await self._directory.remove(self.worker_id)
            await nc.publish(self.names.handover, self.worker_id.encode())
            await nc.flush(timeout=2)
        except Exception as exc:
            logger.warning("worker %s: leaving the directory failed: %s", self.worker_id, exc)
        finally:
            await nc.close()
        if stuck:
            names = ", ".join(sorted(task.get_name() for task in stuck))
            logger.warning("worker %s: waited for %s until the bus closed", self.worker_id, names)
            _, still = await asyncio.wait(stuck, timeout=_CLOSE_WAIT_S)
            if still:
                logger.error("worker %s: %s did not stop", self.worker_id, names)


_REPORT_ON_CLOSE_S = 1.0
"""How long closing waits to tell the directory it accepts no more work."""
_CLOSE_WAIT_S = 10.0
"""How long closing waits for its cancelled tasks before it closes the bus under them."""


def _warm_imports() -> None:
    import importlib

    for module in ("loomkin.llm.providers.openai", "loomkin.llm.providers.anthropic"):
        importlib.import_module(module)

"""A session's host places each of its agents on a worker and sends their model calls there.

How this works and why:

* **The host keeps the session; workers run its agents' calls.** The worker that hosts a
  session (it holds the session's lease) keeps what must have one writer: the log, the
  projections, the scheduler and each agent's loop. What costs a machine its capacity, the
  model calls with their streams and retries, runs on the worker each agent is leased to
  (:mod:`loomkin.cluster.executor`), chosen by :func:`~loomkin.cluster.placement.place`:
  the least-loaded worker that accepts work. The host itself is a worker too and gets its
  share. An agent is placed at its first call, so the autoscaler's spawns land on whichever
  worker is least loaded when they start working.
* **The model is the seam.** :class:`AgentPlacer.wrap` turns the session's model factory into
  one whose models (:class:`PlacedModel`) stream each call from the agent's worker. The loop,
  its controls (a pause cuts the stream within a chunk: the host stops reading and tells the
  worker to cancel), its retries and its journal do not change.
* **Fencing.** A placement is the worker and the agent's lease epoch there. Every call names
  the epoch; a worker that does not hold the agent under it refuses, and the host drops every
  message of a call it abandoned. Only the host appends, under the session's store epoch.
* **Failover.** A worker killed with SIGKILL stops renewing its agents' keys; when a key
  expires (one TTL) the agent is placed on another worker. A silent call learns it by reading
  the key, but not every ``check_s``: the host hears every worker's directory report (every
  third of the TTL, from the same keeper thread that renews the keys;
  :meth:`~loomkin.cluster.directory.WorkerDirectory.follow`), and a call reads its agent's
  key only once its worker has not been heard from for ``lapse_s`` (then every ``check_s``
  until the key expires), and otherwise once per ``recheck_s`` (a TTL). So the host's reads
  grow with the workers that fell silent, not with the calls waiting on their models. The
  reports only decide when to read: the key's expiry alone decides the move. A call that
  had streamed nothing goes there at once, unseen by the loop; one that had fails as
  :class:`~loomkin.errors.ProviderUnavailable`, the loop journals the failed attempt and
  retries it there. A model call has no side effects, and the host journals each call's
  result once, so nothing runs twice. A graceful shutdown gives the agents back at once.
* **Every placement is an event** (``AgentPlaced``): where an agent runs is part of the
  session's history, shown by the CLI and the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from loomkin.cluster.bus import NO_RESPONDERS, stop_if_cancelled
from loomkin.cluster.calls import BadCall, CallEnd, CallRequest, decode_message, split_request
from loomkin.cluster.names import agent_key
from loomkin.cluster.placement import NoWorkers, place
from loomkin.errors import ProviderError, ProviderUnavailable
from loomkin.ids import new_id

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

    from loomkin.agents.roles import Role
    from loomkin.cluster.directory import WorkerDirectory
    from loomkin.cluster.leases import BusLeases
    from loomkin.cluster.names import ClusterNames
    from loomkin.llm.model import Model, ModelRequest, StreamEvent
    from loomkin.service import ModelFactory

__all__ = ["AgentPlacer", "LeaseWatch", "PlacedModel", "Route"]

logger = logging.getLogger(__name__)

OnPlaced = Callable[[str, str, int, str], Awaitable[None]]
"""Called with ``(agent id, worker id, epoch, reason)`` when an agent moves to a worker."""

_MOVES_PER_CALL = 2
"""How often one attempt of a call follows its agent to another worker before it fails."""


_TAKE_TIMEOUT_S = 5.0


class _WorkerLost(ProviderUnavailable):
    """The agent's worker is gone or no longer holds it (the call may move on)."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where an agent runs: the worker that holds its lease, and the lease's epoch there."""

    worker_id: str
    epoch: int


class AgentPlacer:
    """Places one session's agents on workers and keeps track of where they run.

    Args:
        nc: The hosting worker's NATS connection.
        names: The cluster's subjects.
        leases: Reads the leases bucket (who holds an agent's key).
        directory: The live workers and their load.
        session_id: The session whose agents these are.
        project: The project's directory (sent with each call: its ``loomkin.toml``).
        ttl_s: The leases' TTL.
        on_placed: Journals each move (``AgentPlaced``).
    """

    def __init__(
        self,
        *,
        nc: Client,
        names: ClusterNames,
        leases: BusLeases,
        directory: WorkerDirectory,
        session_id: str,
        project: str,
        ttl_s: float,
        on_placed: OnPlaced,
    ) -> None:
        self.nc = nc
        self.names = names
        self._leases = leases
        self._directory = directory
        self.session_id = session_id
        self.project = project
        self.ttl_s = ttl_s
        self.check_s = min(0.5, ttl_s / 4)
        """How often a silent call looks whether its agent's key is worth reading."""
        self.lapse_s = ttl_s / 2
        """A worker not heard from for this long (it reports every third of the TTL) may be
        gone: its silent calls read their agents' keys every ``check_s``."""
        self.recheck_s = ttl_s
        """A silent call reads its agent's key this often even while its worker reports
        (a worker that dropped the agent without a word, reports that mislead)."""
        self.lease_reads = 0
        """Reads of agents' keys in the leases bucket (tests and benchmarks)."""
        self._on_placed = on_placed
        self._routes: dict[str, Route] = {}
        self._placing = asyncio.Lock()
        self._fresh: dict[str, tuple[int, float]] = {}
        """Loads workers gave in their answers, newer than their last directory report."""
        self._shunned: dict[str, float] = {}
        """Workers that failed an agent recently, with when (not chosen again for a TTL)."""
        self._left: dict[str, str] = {}
        """The worker each agent left last (the reason its next placement gives)."""
        self.dropped_messages = 0
        """Messages of abandoned calls or stale epochs the host threw away."""

    def routes(self) -> dict[str, Route]:
        """Where each agent placed so far runs (agent id → route)."""
        return dict(self._routes)

    def wrap(self, factory: ModelFactory) -> ModelFactory:
        """The session's model factory, with every agent's calls placed on a worker."""

        def placed(role: Role, name: str) -> Model:
            return PlacedModel(self, factory(role, name), role=role.name, agent=name)

        return placed

    async def route(self, agent_id: str) -> Route:
        """Where agent ``agent_id`` runs, placing it first if it runs nowhere.

        Raises:
            ProviderUnavailable: no live worker takes it (the call is retried later).
        """
        route = self._routes.get(agent_id)
        if route is not None:
            return route
        # One placement at a time: agents that start together must each see where the
        # others went (the directory's loads are up to a third of the TTL old).
        async with self._placing:
            route = self._routes.get(agent_id)
            if route is not None:
                return route
            return await self._place(agent_id)

    def lost(self, agent_id: str, route: Route, *, shun: bool = True) -> None:
        """The call under ``route`` failed because of its worker: place the agent again.

        ``shun``: the worker is gone or failing, and is not chosen again for a TTL. A worker
        that answered it does not hold the agent (it gave an idle agent back) is alive.
        """
        if self._routes.get(agent_id) == route:
            del self._routes[agent_id]
            if shun:
                self._shunned[route.worker_id] = self._now()
            self._left[agent_id] = route.worker_id

    def watch(self, agent_id: str, route: Route) -> LeaseWatch:
        """Decides, for one silence of a call under ``route``, when to read the agent's key."""
        return LeaseWatch(self, agent_id, route)

    def worth_reading(self, route: Route, last_read: float) -> bool:
        """Whether a call silent under ``route`` should read its agent's key now.

        Yes once the worker has not been heard from for ``lapse_s`` (it may be dead: its
        keys expire a TTL after its last renewal), or ``recheck_s`` after ``last_read``.
        """
        return self._now() - last_read >= self.recheck_s or self._directory.lapsed(
            route.worker_id, after_s=self.lapse_s
        )

    async def _holder(self, key: str) -> dict[str, object] | None:
        self.lease_reads += 1
        return await self._leases.holder(key)

    async def still_holds(self, agent_id: str, route: Route) -> bool:
        """Whether the leases bucket still names ``route``'s worker for the agent.

        A bucket that cannot be read for a moment (the connection reconnecting, JetStream
        busy) is no news: the answer is yes and the next check asks again. Cutting a running
        shell command or a call over a hiccup of the host's own would cost the work; a host
        cut off for good stops its session (and these calls) by its own stall watchdog.
        """
        from nats.errors import ConnectionClosedError
        from nats.errors import Error as NatsError

        try:
            holder = await self._holder(agent_key(self.session_id, agent_id))
        except ConnectionClosedError:
            raise
        except NatsError as exc:
            stop_if_cancelled()
            logger.warning(
                "session %s: could not check who holds agent %s (%r): asks again",
                self.session_id,
                agent_id,
                exc,
            )
            return True
        # Callers poll this in loops that only a cancellation ends: nats-py's request may
        # have swallowed one (rule 5), and the loop would wait for the whole call.
        stop_if_cancelled()
        return holder is not None and holder.get("worker") == route.worker_id

    async def cancel(self, route: Route, call: str) -> None:
        """Tell ``route``'s worker to stop call ``call`` (it kills a shell's processes).

        Best effort: a worker that does not hear it is gone, and its calls with it.
        """
        with contextlib.suppress(Exception):  # the connection may be gone already
            await self.nc.publish(
                self.names.worker_cancels(route.worker_id), json.dumps({"call": call}).encode()
            )

    async def release_all(self) -> None:
        """Give every agent's lease back (the session is done): workers forget them at once."""
        routes, self._routes = self._routes, {}
        for agent_id, route in routes.items():
            with contextlib.suppress(Exception):  # the worker may be gone: its key expires
                await self._ask(route.worker_id, "release", agent_id)

    async def _place(self, agent_id: str) -> Route:
        key = agent_key(self.session_id, agent_id)
        holder = await self._holder(key)
        previous = str(holder["worker"]) if holder and holder.get("worker") else None
        left = self._left.pop(agent_id, None)
        gone: set[str] = set()
        # A worker that holds it already (this host resumed after a failover) keeps it.
        candidate = previous
        for _ in range(8):
            if candidate is None:
                candidate = await self._least_loaded(exclude=gone)
            answer = await self._ask(candidate, "take", agent_id)
            if answer is None:  # nobody answers there: the worker is gone
                gone.add(candidate)
                self._shunned[candidate] = self._now()
                await self._wait_released(key, candidate)
                candidate = None
                continue
            self._note_load(candidate, answer)
            if answer.get("ok") is True and isinstance(epoch := answer.get("epoch"), int):
                route = Route(candidate, epoch)
                self._routes[agent_id] = route
                if route.worker_id != previous or holder is None:
                    came_from = previous or left
                    moved = came_from is not None and came_from != candidate
                    reason = f"moved from {came_from}" if moved else "placed"
                    await self._on_placed(agent_id, candidate, epoch, reason)
                return route
            if answer.get("stalled") is True or answer.get("closing") is True:
                # Its lease keeping is in trouble, or it shuts down: not there.
                gone.add(candidate)
                self._shunned[candidate] = self._now()
                candidate = None
                continue
            held_by = answer.get("held_by")
            if not isinstance(held_by, str) or held_by == candidate:
                candidate = None
            elif held_by in gone:  # the holder is gone: its key has not expired yet
                await self._wait_released(key, held_by)
                candidate = None
            else:  # the holder may be alive: ask it (taking is idempotent there)
                candidate = held_by
        raise ProviderUnavailable(
            f"no worker could take agent {agent_id} of session {self.session_id} "
            f"(gone: {', '.join(sorted(gone)) or 'none'})"
        )

    async def _wait_released(self, key: str, worker_id: str) -> None:
        """Wait until the key of a worker that no longer answers expires (at most a TTL).

        Until then nobody else may take the agent: a worker cut off from NATS (not dead)
        still runs what it was given, until its stall watchdog stops it, at the TTL.

        Raises:
            ProviderUnavailable: the key outlived the TTL (its worker still renews it).
        """
        deadline = self._now() + self.ttl_s + 2 * self.check_s + 1.0
        while True:
            holder = await self._holder(key)
            stop_if_cancelled()  # a cancellation lost in the request (rule 5)
            if holder is None or holder.get("worker") != worker_id:
                return
            if self._now() > deadline:
                raise ProviderUnavailable(
                    f"worker {worker_id} does not answer but still holds {key}: its lease "
                    "should have expired by now"
                )
            await asyncio.sleep(self.check_s)

    async def _least_loaded(self, *, exclude: set[str]) -> str:
        now = self._now()
        shunned = {w for w, at in self._shunned.items() if now - at < self.ttl_s}
        loads = []
        for load in await self._directory.live():
            fresh = self._fresh.get(load.worker_id)
            if fresh is not None and now - fresh[1] < self.ttl_s / 3:
                load = replace(load, agents=fresh[0])  # newer than the directory's report
            loads.append(load)
        try:
            return place(loads, agents=1, exclude=exclude | shunned).worker_id
        except NoWorkers:
            if shunned - exclude:  # better a worker that failed once than none at all
                return place(loads, agents=1, exclude=exclude).worker_id
            raise ProviderUnavailable(
                f"no live worker accepts agents of session {self.session_id}"
            ) from None

    def _note_load(self, worker_id: str, answer: dict[str, object]) -> None:
        agents = answer.get("agents")
        if isinstance(agents, int):
            self._fresh[worker_id] = (agents, self._now())

    async def _ask(self, worker_id: str, op: str, agent_id: str) -> dict[str, object] | None:
        """Ask worker ``worker_id`` to take or release an agent; ``None``: nobody answers."""
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        payload = {"op": op, "session_id": self.session_id, "agent_id": agent_id}
        try:
            reply = await self.nc.request(
                self.names.worker_agents(worker_id),
                json.dumps(payload).encode(),
                timeout=_TAKE_TIMEOUT_S,
            )
        except (NoRespondersError, NatsTimeout):
            stop_if_cancelled()  # a cancellation lost in the request (see there)
            return None
        stop_if_cancelled()
        answer = json.loads(reply.data)
        return answer if isinstance(answer, dict) else None

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()


class LeaseWatch:
    """One silence of a call: when to read its agent's key, and what the key says.

    Made when the silence begins (the call was sent, or its last message came);
    :meth:`still_holds` is asked every ``check_s`` of it.
    """

    def __init__(self, placer: AgentPlacer, agent_id: str, route: Route) -> None:
        self._placer = placer
        self._agent_id = agent_id
        self._route = route
        self._last_read = placer._now()

    async def still_holds(self) -> bool:
        """Whether the agent's worker still holds it (read only when worth it, else yes)."""
        placer = self._placer
        if not placer.worth_reading(self._route, self._last_read):
            return True
        self._last_read = placer._now()
        return await placer.still_holds(self._agent_id, self._route)


class PlacedModel:
    """An agent's model whose calls stream from the worker the agent is placed on.

    A request without the agent's id (``cache_key``: calls made for the session, not an
    agent) runs on the host with the model it wraps.
    """

    def __init__(self, placer: AgentPlacer, inner: Model, *, role: str, agent: str) -> None:
        self._placer = placer
        self._inner = inner
        self._role = role
        self._agent = agent

    @property
    def name(self) -> str:
        return self._inner.name

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        agent_id = request.cache_key
        if not agent_id:
            async with contextlib.aclosing(self._inner.stream(request)) as local:  # type: ignore[type-var]
                async for event in local:
                    yield event
            return
        # A worker lost before the call streamed anything costs the loop nothing: the call
        # goes to the agent's next worker at once (no failed attempt, no backoff). Once
        # events reached the loop, the loss is a failed attempt the loop retries.
        for attempt in range(_MOVES_PER_CALL + 1):
            streamed = False
            try:
                async with contextlib.aclosing(self._remote(agent_id, request)) as remote:
                    async for event in remote:
                        streamed = True
                        yield event
                return
            except _WorkerLost:
                if streamed or attempt == _MOVES_PER_CALL:
                    raise

    async def _remote(
        self, agent_id: str, request: ModelRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        placer = self._placer
        route = await placer.route(agent_id)
        call = new_id("call_")
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def take(msg: Msg) -> None:
            queue.put_nowait(msg)

        nc = placer.nc
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, cb=take)
        finished = False
        try:
            body = CallRequest(
                call=call,
                session_id=placer.session_id,
                agent_id=agent_id,
                epoch=route.epoch,
                agent=self._agent,
                role=self._role,
                model=self._inner.name,
                project=placer.project,
                request=request,
            )
            subject = placer.names.worker_calls(route.worker_id)
            try:
                messages = split_request(body.to_bytes(), call, nc.max_payload)
            except BadCall as exc:
                raise ProviderError(str(exc)) from exc  # permanent: it only grows
            for data, headers in messages:
                await nc.publish(subject, data, reply=inbox, headers=headers)
            while True:
                what = self._read(await self._next(queue, agent_id, route), call, agent_id, route)
                if isinstance(what, CallEnd):
                    finished = True
                    if what.error is not None:
                        raise what.error
                    return
                if what is not None:
                    yield what
        finally:
            if not finished:  # abandoned (a pause, a cancel) or failed: stop it there
                await placer.cancel(route, call)
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()

    def _read(
        self, msg: Msg, call: str, agent_id: str, route: Route
    ) -> StreamEvent | CallEnd | None:
        """What one message of call ``call`` says (``None``: nothing for the stream)."""
        placer = self._placer
        if msg.headers and msg.headers.get("Status") == NO_RESPONDERS:
            placer.lost(agent_id, route)
            raise _WorkerLost(f"worker {route.worker_id} is gone")
        try:
            call_id, what = decode_message(msg.data)
        except BadCall as exc:
            raise ProviderUnavailable(f"worker {route.worker_id} sent {exc}") from exc
        if call_id != call:  # a message of a call abandoned before
            placer.dropped_messages += 1
            return None
        if isinstance(what, CallEnd) and what.refused:
            # A worker that only gave the agent back (idle) is alive and well: not shunned.
            placer.lost(agent_id, route, shun=what.stalled)
            raise _WorkerLost(str(what.error))
        return what

    async def _next(self, queue: asyncio.Queue[Msg], agent_id: str, route: Route) -> Msg:
        """The call's next message; fail once the agent's worker no longer holds it."""
        placer = self._placer
        watch = placer.watch(agent_id, route)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(placer.check_s):
                    return await queue.get()
            if not await watch.still_holds():
                placer.lost(agent_id, route)
                raise _WorkerLost(
                    f"worker {route.worker_id} stopped holding agent {self._agent!r} "
                    "(it died, was cut off or shut down): the call moves to another worker"
                )

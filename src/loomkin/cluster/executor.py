"""A worker's share of other sessions' agents: it holds their leases and runs their model calls.

How this works and why:

* **Each agent is leased to one worker.** A session's host asks a worker (the least-loaded
  one, :mod:`loomkin.cluster.agents`) to take agent ``A``: the worker creates the key
  ``<session>.<agent>`` in the cluster's leases bucket and renews it from its lease keeper's
  thread, as it does for the sessions it hosts. The key's creation revision is the agent's
  **epoch** on this worker: a later holder's is always higher. Taking is idempotent (a worker
  that holds the key answers with its epoch), so a host that resumed after a failover finds
  the agents where they run.
* **Calls.** The host sends each of the agent's model calls to the holder with the epoch it
  placed the agent under. A worker that does not hold the agent under that epoch refuses the
  call; one that does builds the agent's model here (its own provider keys, the project's
  model endpoint) and streams every event back on the call's inbox, then ``close`` or the
  error. The host keeps the journal: workers never write to the log, so a worker cut off by a
  partition has nothing to write, and what it still streams for an epoch that moved on is
  dropped by the host.
* **Losing a lease** (another worker took the key after this one stalled) stops the agent's
  calls at once. An agent without a call for ``idle_s`` is given back, so a finished or
  vanished session does not pin agents here; a graceful close gives every agent back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin.agents.roles import resolve_role
from loomkin.cluster.bus import stop_if_cancelled
from loomkin.cluster.calls import (
    PART_HEADER,
    BadCall,
    CallRequest,
    RequestParts,
    call_of,
    decode_request,
    encode_close,
    encode_error,
    encode_event,
    split_event,
)
from loomkin.cluster.keeper import KeptLease
from loomkin.cluster.leases import LeaseLost
from loomkin.cluster.names import agent_key
from loomkin.cluster.tools import run_placed_tool
from loomkin.errors import LoomkinError, ProviderUnavailable, ToolError
from loomkin.llm.model import Model
from loomkin.llm.registry import make_model
from loomkin.service.config import load_config
from loomkin.service.options import session_options

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from loomkin.agents.settings import SessionSettings
    from loomkin.cluster.hosting import HostOptions
    from loomkin.cluster.keeper import LeaseKeeper
    from loomkin.cluster.leases import BusLease, BusLeases
    from loomkin.cluster.names import ClusterNames

__all__ = ["AgentExecutor"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class _Held:
    """An agent this worker holds the lease of."""

    session_id: str
    agent_id: str
    epoch: int
    kept: KeptLease
    lost: asyncio.Event
    last_used: float
    model: Model | None = None
    calls: set[str] = field(default_factory=set)

    def troubled(self) -> bool:
        """Its lease was lost, or not renewed for a TTL: this worker cannot vouch for it."""
        return self.lost.is_set() or _stalled(self.kept)


class AgentExecutor:
    """Holds agents' leases for their sessions' hosts and runs their calls (module docstring)."""

    def __init__(
        self,
        *,
        nc: Client,
        names: ClusterNames,
        worker_id: str,
        leases: BusLeases,
        keeper: LeaseKeeper,
        options: HostOptions,
        idle_s: float | None = None,
        accepting: Callable[[], bool] = lambda: True,
        load: Callable[[], int] | None = None,
    ) -> None:
        self._nc = nc
        self._names = names
        self._worker_id = worker_id
        self._leases = leases
        self._keeper = keeper
        self._options = options
        self._idle_s = idle_s if idle_s is not None else max(30.0, 6 * options.ttl_s)
        self._accepting = accepting
        """False while the worker shuts down: it takes no new agent (it gives all back soon)."""
        self._load = load or self.agents
        """The agents its worker reports as its load (hosts place by it; default: those here)."""
        self._held: dict[str, _Held] = {}
        self._calls: dict[str, asyncio.Task[None]] = {}
        self._subs: list[Subscription] = []
        self._parts = RequestParts()
        """Requests that came in several messages, until their last part comes."""
        self._cancelled: dict[str, float] = {}
        """Calls cancelled before they came, with when (for a TTL): they are not run.
        Calls and cancels arrive on two subscriptions, each handled in a task of its own."""
        self._reaper: asyncio.Task[None] | None = None
        self.calls_run = 0
        """Model calls this worker streamed (tests and benchmarks)."""
        self.calls_refused = 0
        """Calls refused because the agent was not held here under their epoch."""
        self.tools_run = 0
        """Tool calls (the shell) this worker ran for agents it holds."""

    def agents(self) -> int:
        """Agents leased to this worker now (its load)."""
        return len(self._held)

    def in_flight(self, session_id: str | None = None, agent_id: str | None = None) -> int:
        """Model and tool calls running here now (of one agent, if named)."""
        if session_id is None or agent_id is None:
            return len(self._calls)
        held = self._held.get(agent_key(session_id, agent_id))
        return len(held.calls) if held is not None else 0

    def held(self) -> list[tuple[str, str]]:
        """``(session, agent)`` of every agent leased here."""
        return [(h.session_id, h.agent_id) for h in self._held.values()]

    async def start(self) -> None:
        """Answer take and release requests, calls and cancels addressed to this worker."""
        nc, names, me = self._nc, self._names, self._worker_id
        self._subs = [
            await nc.subscribe(names.worker_agents(me), cb=self._on_agents),
            await nc.subscribe(names.worker_calls(me), cb=self._on_call),
            await nc.subscribe(names.worker_tools(me), cb=self._on_tool),
            await nc.subscribe(names.worker_cancels(me), cb=self._on_cancel),
        ]
        self._reaper = asyncio.get_running_loop().create_task(
            self._reap_loop(), name=f"{me}:agents"
        )

    async def close(self) -> None:
        """Stop every call and give every agent back at once (their hosts place them again)."""
        for sub in self._subs:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()
        self._subs = []
        tasks = [t for t in (self._reaper, *self._calls.values()) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._reaper = None
        for key in list(self._held):
            await self._give_back(key)

    # -- leases -----------------------------------------------------------------------------

    async def _on_agents(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
            op, session_id, agent_id = body["op"], str(body["session_id"]), str(body["agent_id"])
            key = agent_key(session_id, agent_id)
            if op == "take":
                answer = await self._take(key, session_id, agent_id)
            elif op == "release":
                await self._give_back(key)
                answer = {"ok": True}
            else:
                answer = {"ok": False, "error": f"unknown operation {op!r}"}
        except (ValueError, KeyError, TypeError, LoomkinError) as exc:
            answer = {"ok": False, "error": f"bad request: {exc}"}
        except Exception as exc:  # the bucket failed this once: say so, the host asks again
            # Silence would cost the host its request's timeout, then make it take this
            # worker for a dead one: shunned, and the agent held back until a TTL passed.
            logger.warning("worker %s: an agents request failed: %r", self._worker_id, exc)
            answer = {"ok": False, "error": f"worker {self._worker_id} failed: {exc!r}"}
        answer["agents"] = self._load()
        await msg.respond(json.dumps(answer).encode())

    async def _take(self, key: str, session_id: str, agent_id: str) -> dict[str, object]:
        held = self._held.get(key)
        if held is not None and not held.lost.is_set() and _stalled(held.kept):
            # Not renewed for a TTL: the key may have expired, another may hold it. This
            # worker cannot vouch for the agent (nor take it afresh before its key is gone).
            return {"ok": False, "stalled": True}
        if held is not None and not held.lost.is_set():
            held.last_used = _now()
            # A host asks only for an agent it has no route to: a call of the agent still
            # running here is an orphan of a host that died (its successor reported it
            # interrupted to the model, which may run it again) or one it gave up on.
            for call in list(held.calls):
                if (task := self._calls.get(call)) is not None:
                    logger.info(
                        "worker %s: stops call %s of %s (no host reads it)",
                        self._worker_id,
                        call,
                        key,
                    )
                    task.cancel()
            return {"ok": True, "epoch": held.epoch}
        if held is not None:  # lost meanwhile: forget it, then try to take it afresh
            await self._drop(key)
        if not self._accepting():  # its calls would be cut when this worker leaves
            return {"ok": False, "closing": True}
        lease = await self._leases.acquire(key)
        if lease is None:
            held = self._held.get(key)
            if held is not None and not held.lost.is_set():  # a take that ran beside this one
                return {"ok": True, "epoch": held.epoch}
            holder = await self._leases.holder(key)
            return {"ok": False, "held_by": holder.get("worker") if holder else None}
        lost = asyncio.Event()
        kept = self._keeper.keep(lease, stall_s=self._options.ttl_s, changed=lost)
        kept.renew_now(lease.revision)  # the key's value says which epoch it holds
        self._held[key] = _Held(
            session_id=session_id,
            agent_id=agent_id,
            epoch=lease.revision,
            kept=kept,
            lost=lost,
            last_used=_now(),
        )
        logger.info("worker %s: takes agent %s (epoch %d)", self._worker_id, key, lease.revision)
        return {"ok": True, "epoch": lease.revision}

    async def _give_back(self, key: str) -> None:
        held = self._held.get(key)
        if held is None:
            return
        lease = await self._drop(key)
        if not held.lost.is_set():
            try:
                await self._leases.release(lease)
                await self._nc.publish(self._names.handover, key.encode())
            except Exception as exc:  # it expires after the TTL anyway
                logger.warning("agent %s: giving the lease back failed: %r", key, exc)

    async def _drop(self, key: str) -> BusLease:
        """Forget ``key``: stop its calls and its renewals; return the lease as last renewed."""
        held = self._held.pop(key)
        for call in list(held.calls):
            task = self._calls.get(call)
            if task is not None:
                task.cancel()
        return await held.kept.stop()

    async def _reap_loop(self) -> None:
        """Drop agents whose lease was lost; give back those idle for ``idle_s``."""
        period = self._options.ttl_s / 3
        while True:
            stop_if_cancelled()
            await asyncio.sleep(period)
            now = _now()
            self._parts.drop_older_than(now - self._options.ttl_s)
            for call, at in list(self._cancelled.items()):
                if now - at > self._options.ttl_s:
                    del self._cancelled[call]
            for key, held in list(self._held.items()):
                if self._held.get(key) is not held:
                    continue  # dropped or taken afresh while an earlier one was let go
                try:
                    if held.troubled():
                        logger.warning(
                            "worker %s: lost the lease of agent %s", self._worker_id, key
                        )
                        await self._drop(key)
                    elif not held.calls and now - held.last_used > self._idle_s:
                        await self._give_back(key)
                except Exception as exc:
                    logger.warning("agent %s: letting it go failed: %r", key, exc)

    # -- calls ------------------------------------------------------------------------------

    async def _on_call(self, msg: Msg) -> None:
        inbox = msg.reply
        if not inbox:
            return  # nobody to stream to
        data = msg.data
        part = msg.headers.get(PART_HEADER) if msg.headers else None
        try:
            if part is not None:  # one part of a request larger than a message
                _, whole = self._parts.add(part, msg.data, _now())
                if whole is None:
                    return  # more parts to come
                data = whole
            request = decode_request(data)
        except BadCall as exc:
            named = part.split(" ")[0] if part else call_of(data)
            await self._nc.publish(inbox, encode_error(named, exc))
            return
        try:
            key = agent_key(request.session_id, request.agent_id)
        except LoomkinError as exc:
            await self._nc.publish(inbox, encode_error(request.call, exc))
            return
        held, troubled = self._holding(key, request.epoch)
        if held is None:
            reason = ProviderUnavailable(
                f"worker {self._worker_id} does not hold agent {request.agent!r} under epoch "
                f"{request.epoch}: it is placed again"
            )
            refusal = encode_error(request.call, reason, refused=True, stalled=troubled)
            await self._nc.publish(inbox, refusal)
            return
        if request.call in self._calls:
            return  # the same call twice: it is streaming already
        if self._cancelled.pop(request.call, None) is not None:
            return  # its cancel overtook it: the host listens no more
        self._run(held, request.call, self._stream(held, request, inbox), f"call:{request.call}")

    def _holding(self, key: str, epoch: object) -> tuple[_Held | None, bool]:
        """The agent ``key`` if held here under ``epoch``, and whether its lease is in trouble.

        A call for it otherwise is refused (and counted): its host places the agent again.
        """
        held = self._held.get(key)
        troubled = held is not None and held.troubled()
        if held is None or held.epoch != epoch or troubled:
            self.calls_refused += 1
            return None, troubled
        return held, False

    def _run(
        self, held: _Held, call: str, work: Coroutine[object, object, None], name: str
    ) -> None:
        """Run ``work``, one call of agent ``held``, in a task this executor owns."""
        held.calls.add(call)
        held.last_used = _now()
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._calls[call] = task
        task.add_done_callback(functools.partial(self._ended, held, call))

    def _ended(self, held: _Held, call: str, _task: asyncio.Task[None]) -> None:
        self._calls.pop(call, None)
        held.calls.discard(call)
        held.last_used = _now()

    async def _on_cancel(self, msg: Msg) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            call = str(json.loads(msg.data)["call"])
            task = self._calls.get(call)
            if task is not None:
                task.cancel()
            else:  # not here yet (or over already): if it still comes, it is not run
                self._cancelled[call] = _now()

    async def _stream(self, held: _Held, request: CallRequest, inbox: str) -> None:
        nc, call = self._nc, request.call
        try:
            model = held.model
            if model is None:
                held.model = model = await asyncio.to_thread(self._model, request)
            self.calls_run += 1
            events = model.stream(request.request)
            async with contextlib.aclosing(events) as stream:  # type: ignore[type-var]
                async for event in stream:
                    held.kept.check()  # a lease gone is a call that stops now
                    for piece in split_event(event, nc.max_payload):
                        await nc.publish(inbox, encode_event(call, piece))
            await nc.publish(inbox, encode_close(call))
        except LeaseLost as exc:
            held.lost.set()
            lost = ProviderUnavailable(str(exc))
            await nc.publish(inbox, encode_error(call, lost, refused=True, stalled=True))
        except asyncio.CancelledError:
            raise  # the host abandoned it, or this worker closes: the host hears nothing more
        except Exception as exc:  # the model failed: the host's loop decides about retries
            await nc.publish(inbox, encode_error(call, exc))

    # -- tools ------------------------------------------------------------------------------

    async def _on_tool(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
            key = agent_key(str(body["session_id"]), str(body["agent_id"]))
            call_id = str(body["call_id"])
            epoch = body["epoch"]
        except (ValueError, KeyError, TypeError, LoomkinError) as exc:
            await msg.respond(
                json.dumps({"ok": False, "text": f"bad tool request: {exc}"}).encode()
            )
            return
        held, troubled = self._holding(key, epoch)
        if held is None:
            refusal = {"ok": False, "refused": True, "stalled": troubled, "text": ""}
            await msg.respond(json.dumps(refusal).encode())
            return
        if call_id in self._calls:
            return  # the same call twice: it is running already
        if self._cancelled.pop(call_id, None) is not None:  # its cancel overtook it
            await msg.respond(json.dumps({"ok": False, "text": "cancelled"}).encode())
            return
        self._run(held, call_id, self._tool(msg, body, call_id), f"tool:{call_id}")

    async def _tool(self, msg: Msg, body: dict[str, object], call_id: str) -> None:
        try:
            text, ok = await run_placed_tool(body, call_id, self._settings_for), True
        except (ToolError, LoomkinError) as exc:
            text, ok = str(exc), False
        except Exception as exc:  # a bug in a tool must not take the worker down
            logger.exception("tool call %s failed on worker %s", call_id, self._worker_id)
            text = f"{body.get('tool')} failed unexpectedly: {type(exc).__name__}: {exc}"
            ok = False
        self.tools_run += 1
        await msg.respond(json.dumps({"ok": ok, "text": text}).encode())

    def _settings_for(self, project: Path) -> SessionSettings:
        """The settings a placed tool runs under: the worker's, else the project's."""
        return self._options.settings or session_options(load_config(project)).settings

    def _model(self, request: CallRequest) -> Model:
        """Build the agent's model here: the worker's factory, else the spec with its keys."""
        factory = self._options.model_factory
        settings = self._options.settings
        if factory is not None and settings is not None:
            return factory(resolve_role(request.role, settings.custom_roles), request.agent)
        options = session_options(load_config(Path(request.project)))
        custom = (settings or options.settings).custom_roles
        if factory is not None:
            return factory(resolve_role(request.role, custom), request.agent)
        return make_model(request.model, base_url=options.base_url, api_key_env=options.api_key_env)


def _stalled(kept: KeptLease) -> bool:
    try:
        kept.check()
    except LeaseLost:
        return True
    return False


def _now() -> float:
    return asyncio.get_running_loop().time()

"""One session's agents hosted on one worker: lease, heartbeats, controls, notifications.

How this works and why:

* **Lease first, then the store.** The worker holds the session's key-value lease before it
  opens a runtime on the store and resumes the session there (``take_over``: the bucket has
  already decided that the previous holder is gone). Resuming takes the session's store lease,
  which bumps its fencing epoch, so every later append of the previous holder is refused by
  the store. The replay is the same as after a restart: paused agents stay paused,
  acknowledged controls apply, completed tool calls are not run again, an interrupted one is
  reported (or re-run when idempotent).
* **Heartbeats carry the epoch.** Every third of the TTL the worker's lease keeper (a thread
  of its own, :mod:`loomkin.cluster.keeper`, so a busy loop cannot starve it) renews the key
  with the store epoch it writes under. When the renewal is refused (the key expired and
  another worker took it) or none got through for ``stall_s`` (cut off from NATS, or the
  process was stopped), the worker stops the session's agents itself; the store's fence
  refuses whatever they would still write.
* **Controls and permission prompts cross workers over NATS**: the hosting worker answers the
  session's control subject (request/reply), and asks the session's permission subject when
  an agent needs a decision (request/reply with a deadline; no answer in time is a denial).
* **Questions to the user too**: each one an agent asks the user goes out on the session's
  question subject (request/reply until the question's own deadline); the reply is journaled
  as the user's answer. Without one the question expires and the agent is told. After a
  failover the new host forwards the questions the log left open.
* **Notifications, not events, go over NATS**: after each committed event the worker
  publishes the session's newest position; followers read the events from the store.
* **Done** when the session has nothing left to do: the placement is marked done *before* the
  lease is given back, so no other worker resumes a finished session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from loomkin.agents.settings import SessionSettings
from loomkin.cluster.actions import answer_action
from loomkin.cluster.agents import AgentPlacer
from loomkin.cluster.bus import NO_RESPONDERS, stop_if_cancelled
from loomkin.cluster.leases import BusLease, BusLeases, LeaseLost
from loomkin.cluster.tools import PlacedTools
from loomkin.cluster.writes import LedgerStore, WriteLedger
from loomkin.errors import StaleEpoch, UserError
from loomkin.persistence import open_store
from loomkin.service import Loomkin, ModelFactory, Session, answer_user_questions
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

    from loomkin.cluster.directory import Placement, Placements, WorkerDirectory
    from loomkin.cluster.keeper import KeptLease, LeaseKeeper
    from loomkin.cluster.names import ClusterNames
    from loomkin.core.records import PauseMode, PermissionDecision
    from loomkin.core.store import Store
    from loomkin.service import PendingPermission, UserQuestion

__all__ = ["HostOptions", "HostedSession", "Outcome"]

logger = logging.getLogger(__name__)

Outcome = Literal["done", "lost", "released"]
"""How hosting ended: the session finished, the lease moved away, or this worker gave it up."""

_CONTROLS = ("pause", "resume", "steer", "cancel")
_PREVIEW_MAX = 200_000
"""Largest diff or argument text sent with a forwarded prompt (a NATS message is ≤ 1 MB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOptions:
    """How a worker runs the sessions it hosts."""

    store_url: str
    ttl_s: float
    model_factory: ModelFactory | None = None
    """Every agent's model (tests and benchmarks); ``None``: the session's own model."""
    settings: SessionSettings | None = None
    """Session settings (``None``: the project's ``loomkin.toml``)."""
    approve_all: PermissionPolicy | None = None
    """The policy of sessions opened with ``--yes``."""
    prepare: Callable[[Session], Awaitable[None]] | None = None
    """Called after a session is opened or resumed here (benchmarks set up their work)."""
    ask_timeout_s: float = 300.0
    """Deadline of a permission prompt forwarded over NATS; no answer in time denies."""
    stall_s: float | None = None
    """A hosted session whose lease could not be renewed for this long stops its agents here
    (the worker was cut off or stopped; ``None``: the TTL, after which the lease is gone)."""
    ledger: WriteLedger | None = None
    """Records what each hosted session's appends did (tests and benchmarks of partitions)."""
    place_agents: bool = True
    """Place each agent on the least-loaded worker, which runs its model calls and its shell
    (``False``: every agent of a session runs on the worker that hosts the session)."""

    def __post_init__(self) -> None:
        if self.stall_s is not None and not self.stall_s > 0:
            raise UserError(f"stall_s must be a positive number of seconds, not {self.stall_s!r}")


class HostedSession:
    """A session whose agents run on this worker while it holds the session's lease."""

    def __init__(
        self,
        *,
        nc: Client,
        names: ClusterNames,
        leases: BusLeases,
        placements: Placements,
        options: HostOptions,
        lease: BusLease,
        placement: Placement,
        keeper: LeaseKeeper,
        directory: WorkerDirectory | None = None,
    ) -> None:
        self._nc = nc
        self._directory = directory
        self.placer: AgentPlacer | None = None
        """Places the agents' model calls on workers (``None``: they run here)."""
        self._unrecorded: list[tuple[str, str, int, str]] = []
        """Placements made before the session object existed (journaled when it does)."""
        self._keeper = keeper
        self._kept: KeptLease | None = None
        self._names = names
        self._leases = leases
        self._placements = placements
        self._options = options
        self._lease = lease
        self.placement = placement
        self._runtime: Loomkin | None = None
        self.session: Session | None = None
        self._beat: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        """Renews the lease from the moment it is taken (opening and replaying take time)."""
        self._open_asks: dict[str, tuple[bytes, str]] = {}
        """Permission prompts waiting for an answer: what was sent, and the inbox answered."""
        self._wanted: Subscription | None = None
        """Requests to send the open prompts again (see :meth:`_on_prompts_wanted`)."""

    @property
    def session_id(self) -> str:
        return self.placement.session_id

    def agents(self) -> int:
        """Agents of the session (its weight in this worker's load)."""
        return len(self.session.agents()) if self.session is not None else self.placement.agents

    def _policy(self) -> PermissionPolicy | None:
        return self._options.approve_all if self.placement.approve_all else None

    async def open_new(self, project: str, *, goal: str, model: str | None, title: str) -> str:
        """Open a new session here (the caller holds no lease yet: the id is new)."""
        options = self._options
        self._runtime = runtime = await Loomkin.open(await self._store(), lease_ttl_s=options.ttl_s)
        placer = self._placer("-", project)
        session = await runtime.open_session(
            project,
            model=None if options.model_factory else model,
            model_factory=options.model_factory,
            settings=options.settings,
            policy=self._policy(),
            title=title,
            wrap_models=placer.wrap if placer is not None else None,
            tool_runner=PlacedTools(placer) if placer is not None else None,
        )
        if placer is not None:  # no agent has called its model yet: the id is new
            placer.session_id = session.session_id
            placer.project = session.project_root
        lease = await self._leases.acquire(session.session_id)
        if lease is None:  # cannot happen: nobody knows the new id yet
            raise UserError(f"the new session {session.session_id} is leased elsewhere")
        self._lease = lease
        self._keep()
        self.placement = replace(
            self.placement,
            session_id=session.session_id,
            worker_id=self._leases.worker_id,
            hosts=(self._leases.worker_id,),
        )
        await self._placements.put(self.placement)
        await self._attach(session)
        if goal:
            await session.send(goal)
        return session.session_id

    async def resume(self) -> None:
        """Resume the session here from the log (a failover, or a placed stored session)."""
        options = self._options
        self._keep()
        self._runtime = runtime = await Loomkin.open(await self._store(), lease_ttl_s=options.ttl_s)
        placer = None
        if options.place_agents:
            await runtime.pull()  # the session may be newer than this runtime's first read
            placer = self._placer(
                self.session_id, runtime.stored_session(self.session_id).project_root
            )
        session = await runtime.resume_session(
            self.session_id,
            model_factory=options.model_factory,
            settings=options.settings,
            policy=self._policy(),
            take_over=True,
            wrap_models=placer.wrap if placer is not None else None,
            tool_runner=PlacedTools(placer) if placer is not None else None,
        )
        me = self._leases.worker_id
        self.placement = replace(self.placement, worker_id=me, hosts=(*self.placement.hosts, me))
        await self._placements.put(self.placement)
        await self._attach(session)

    def _placer(self, session_id: str, project: str) -> AgentPlacer | None:
        if not self._options.place_agents or self._directory is None:
            return None
        self.placer = AgentPlacer(
            nc=self._nc,
            names=self._names,
            leases=self._leases,
            directory=self._directory,
            session_id=session_id,
            project=project,
            ttl_s=self._options.ttl_s,
            on_placed=self._placed,
        )
        return self.placer

    async def _placed(self, agent_id: str, worker: str, epoch: int, reason: str) -> None:
        session = self.session
        if session is None:  # still resuming: journaled once the session exists
            self._unrecorded.append((agent_id, worker, epoch, reason))
            return
        await session.record_placement(agent_id, worker, epoch=epoch, reason=reason)

    async def _store(self) -> Store:
        store = await open_store(self._options.store_url)
        ledger = self._options.ledger
        return store if ledger is None else LedgerStore(store, ledger)

    async def _attach(self, session: Session) -> None:
        self.session = session
        placed, self._unrecorded = self._unrecorded, []
        for agent_id, worker, epoch, reason in placed:
            await session.record_placement(agent_id, worker, epoch=epoch, reason=reason)
        self._beat_now.set()  # publish the store's epoch with the next heartbeat, now
        if not self.placement.approve_all:
            # Subscribed before the agents can ask anything, and before whoever opened the
            # session hears its id and starts answering (it then says so on this subject).
            self._wanted = await self._nc.subscribe(
                self._names.session_prompts_wanted(self.session_id), cb=self._on_prompts_wanted
            )
            session.set_permission_responder(self._ask)
        if self._options.prepare is not None:
            await self._options.prepare(session)

    async def host(self) -> Outcome:
        """Run until the session is done, the lease is lost, or this task is cancelled.

        Always closes the runtime; gives the lease back unless it was lost.
        """
        session = self.session
        assert session is not None
        outcome: Outcome = "released"
        sub = await self._nc.subscribe(
            self._names.session_control(self.session_id), cb=self._on_control
        )
        acts = await self._nc.subscribe(
            self._names.session_action(self.session_id), cb=self._on_action
        )
        beat = self._beat
        assert beat is not None
        notify = asyncio.create_task(self._notify(session), name=f"notify:{self.session_id}")
        # Done once nothing is left, paused agents included: a paused agent is resumed by a
        # control sent to this host, which a session marked done would no longer take.
        idle = asyncio.create_task(session.wait_finished(), name=f"idle:{self.session_id}")
        asks = asyncio.create_task(
            answer_user_questions(session, self._forward_question), name=f"ask:{self.session_id}"
        )
        try:
            await asyncio.wait({beat, idle}, return_when=asyncio.FIRST_COMPLETED)
            if idle.done() and idle.exception() is None:
                outcome = "done"
                # Its agents' workers forget them at once, before anyone can see the session
                # done (a host that dies in between leaves it running: its successor resumes
                # it, finds nothing left to do, and marks it done).
                if self.placer is not None:
                    await self.placer.release_all()
                self.placement = replace(self.placement, status="done", agents=self.agents())
                await self._placements.put(self.placement)
            else:
                outcome = "lost"
                failed = beat if beat.done() else idle
                exc = failed.exception()
                logger.warning("session %s: stops here: %s", self.session_id, exc)
        finally:
            for task in (beat, notify, idle, asks):
                task.cancel()
            await asyncio.wait({beat, notify, idle, asks})
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await acts.unsubscribe()
            await self._close(release=outcome != "lost")
        return outcome

    def _keep(self) -> None:
        if self._beat is None:
            # The keeper's thread renews from now on, even while this loop is still busy
            # importing, opening and replaying (which can take longer than the TTL).
            self._kept = self._keeper.keep(
                self._lease,
                stall_s=self._options.stall_s or self._options.ttl_s,  # checked: None or > 0
                changed=self._beat_now,
            )
            self._beat = asyncio.get_running_loop().create_task(
                self._heartbeat(self._kept), name=f"lease:{self.session_id}"
            )

    async def _close(self, *, release: bool) -> None:
        runtime, self._runtime = self._runtime, None
        wanted, self._wanted = self._wanted, None
        if wanted is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await wanted.unsubscribe()
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            await asyncio.wait([beat])
        kept, self._kept = self._kept, None
        try:
            if kept is not None:
                self._lease = await kept.stop()
        finally:
            # Whatever became of the keeper, the runtime (agents, store connection) closes.
            await self._close_runtime(runtime, release=release)

    async def _close_runtime(self, runtime: Loomkin | None, *, release: bool) -> None:
        try:
            if runtime is not None:
                await runtime.close()
        finally:
            if release:
                try:
                    await self._leases.release(self._lease)
                    await self._nc.publish(self._names.handover, self.session_id.encode())
                except Exception as exc:
                    # It expires after the TTL anyway: the next holder only waits longer.
                    logger.warning(
                        "session %s: giving the lease back failed: %r", self.session_id, exc
                    )

    async def abort(self) -> None:
        """Close after a failed open or resume (a lease taken is given back at once)."""
        await self._close(release=bool(self._lease.key) and self._lease.key == self.session_id)

    async def _heartbeat(self, kept: KeptLease) -> None:
        """Watch the lease the keeper's thread renews; raise :class:`LeaseLost` once it is gone.

        Gone: taken by another worker, not renewed for ``stall_s`` (the stall watchdog), or
        the store lease was taken over. Passes the store's epoch on to the renewals.
        """
        ttl = self._options.ttl_s
        while True:
            kept.check()  # lost, or stopped or cut off for too long: stop now
            session = self.session
            lease = session.lease() if session is not None else None
            if session is not None and lease is None:
                raise LeaseLost(f"session {self.session_id}: its store lease was taken over")
            if lease is not None and lease.epoch != kept.epoch:
                kept.renew_now(lease.epoch)  # publish the store's epoch with a renewal now
            # Not asyncio.wait_for: on 3.11 it loses a cancellation that comes with the event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ttl / 3):
                    await self._beat_now.wait()
            self._beat_now.clear()

    async def _notify(self, session: Session) -> None:
        subject = self._names.session_events(self.session_id)
        async with session.events(after=None) as events:
            async for recorded in events:
                await self._nc.publish(subject, str(recorded.position).encode())

    async def _on_control(self, msg: Msg) -> None:
        try:
            request = json.loads(msg.data)
            answer = {"ok": True, "request": await self._control(request)}
        except (UserError, ValueError, TypeError, KeyError) as exc:
            answer = {"ok": False, "error": str(exc)}
        except StaleEpoch as exc:
            answer = {"ok": False, "error": f"this worker lost the session: {exc}"}
        await msg.respond(json.dumps(answer).encode())

    async def _on_action(self, msg: Msg) -> None:
        """Apply a budget, task or speculation action (:mod:`loomkin.cluster.actions`)."""
        reply = await answer_action(self.session, msg.data, max_bytes=self._nc.max_payload)
        await msg.respond(reply)

    async def _control(self, request: dict[str, object]) -> str:
        session = self.session
        if session is None:
            raise UserError("the session is not running on this worker yet")
        action, agent = request.get("action"), request.get("agent")
        if action == "send":  # the user's message, to the Concierge or the agent named
            text = request.get("text")
            if not isinstance(text, str) or not text.strip():
                raise UserError("a message needs a non-empty text")
            to = session.agent(agent).agent_id if isinstance(agent, str) and agent else None
            return await session.send(text, to=to)
        if action not in _CONTROLS or not isinstance(agent, str):
            raise UserError(f"a control needs an action among {_CONTROLS} and an agent name")
        mode: PauseMode = "at_boundary" if request.get("mode") == "at_boundary" else "asap"
        match action:
            case "pause":
                return await session.pause(agent, mode=mode, force=bool(request.get("force")))
            case "resume":
                return await session.resume(agent)
            case "steer":
                text = request.get("text")
                if not isinstance(text, str) or not text.strip():
                    raise UserError("steer needs a non-empty text")
                return await session.steer(agent, text, mode=mode)
            case _:
                return await session.cancel(agent)

    async def _ask(self, prompt: PendingPermission) -> PermissionDecision | None:
        """Forward a permission prompt to whoever runs the session; deny at the deadline."""
        from nats.errors import TimeoutError as NatsTimeout

        ask = {
            "request_id": prompt.request_id,
            "agent": prompt.agent,
            "tool": prompt.tool,
            "category": prompt.category,
            "target": prompt.target,
        }
        if self.session is not None:  # what a page shows of it, as for a session it hosts
            preview = self.session.permission_preview(prompt)
            arguments = json.dumps(dict(prompt.arguments), default=str)
            ask |= {
                "arguments": arguments if len(arguments) <= _PREVIEW_MAX else "{}",
                "diff": preview.diff if len(preview.diff) <= _PREVIEW_MAX else "",
                "command": preview.command,
                "always": preview.always,
            }
        payload = json.dumps(ask).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._options.ask_timeout_s
        subject = self._names.session_permission(self.session_id)
        # One inbox for every time it is sent: an answer to any of them is the answer.
        answers = await self._nc.subscribe(self._nc.new_inbox())
        self._open_asks[prompt.request_id] = (payload, answers.subject)
        try:
            await self._nc.publish(subject, payload, reply=answers.subject)
            while (left := deadline - loop.time()) > 0:
                try:
                    reply = await answers.next_msg(timeout=left)
                except NatsTimeout:
                    break
                if reply.headers and reply.headers.get("Status") == NO_RESPONDERS:
                    await asyncio.sleep(min(1.0, left))  # the asker may be reconnecting
                    await self._nc.publish(subject, payload, reply=answers.subject)
                    continue
                decision = json.loads(reply.data).get("decision")
                if decision in ("allow_once", "allow_always", "deny"):
                    return decision  # type: ignore[no-any-return]
        finally:
            del self._open_asks[prompt.request_id]
            with contextlib.suppress(Exception):  # the connection may be gone already
                await answers.unsubscribe()
        logger.warning("session %s: permission prompt unanswered: denied", self.session_id)
        return "deny"

    async def _on_prompts_wanted(self, _msg: Msg) -> None:
        """Send the prompts still open again: a new listener of them may not have seen them."""
        subject = self._names.session_permission(self.session_id)
        for payload, inbox in list(self._open_asks.values()):
            await self._nc.publish(subject, payload, reply=inbox)

    async def _forward_question(self, question: UserQuestion) -> str | None:
        """Ask the session's question subject; ``None`` if nobody answers by the deadline."""
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        loop = asyncio.get_running_loop()
        deadline = loop.time() + question.seconds_left
        subject = self._names.session_question(self.session_id)
        pause = 0.1
        while (left := deadline - loop.time()) > 0:
            payload = {
                "question_id": question.question_id,
                "agent": question.agent,
                "team": question.team,
                "question": question.question,
                "seconds_left": left,
            }
            try:
                reply = await self._nc.request(subject, json.dumps(payload).encode(), timeout=left)
            except NoRespondersError:
                stop_if_cancelled()  # a cancellation lost in the request (see there)
                # Whoever runs it may be (re)connecting: ask again soon, then less often.
                await asyncio.sleep(min(pause, left))
                pause = min(2 * pause, 2.0)
                continue
            except NatsTimeout:
                break
            answer = json.loads(reply.data).get("answer")
            return answer if isinstance(answer, str) else None
        return None

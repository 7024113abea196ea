"""The cluster seen from outside: start sessions on workers, follow them, control their agents.

What ``loomkin run --bus``, ``loomkin cluster …`` and Python callers use. It never hosts
agents itself (a :class:`~loomkin.cluster.worker.Worker` in the same process does that).
Events are read from the store; NATS only says when there are new ones, so a follower that
misses a notification still sees every event at its next read (it also reads every
``poll_s`` without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Self

from loomkin.cluster.actions import SessionNotHosted, refusal
from loomkin.cluster.bus import connect, open_buckets, stop_if_cancelled
from loomkin.cluster.directory import Placement, Placements, WorkerDirectory
from loomkin.cluster.leases import BusLeases
from loomkin.cluster.names import DEFAULT_CLUSTER, ClusterNames
from loomkin.cluster.placement import WorkerLoad, place
from loomkin.errors import NotFound, PolicyRefused, UserError
from loomkin.persistence import open_store

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
    from types import TracebackType

    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from pydantic import JsonValue

    from loomkin.cluster.actions import SessionAction
    from loomkin.cluster.bus import Buckets
    from loomkin.core.events import RecordedEvent
    from loomkin.core.records import PermissionDecision
    from loomkin.core.store import Store

__all__ = ["ClusterClient", "ControlAction", "PermissionAsk", "QuestionAsk"]

logger = logging.getLogger(__name__)

ControlAction = Literal["pause", "resume", "steer", "cancel"]

PermissionAsk = dict[str, str]
"""A forwarded permission prompt: request_id, agent, tool, category, target."""


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionAsk:
    """A question an agent of a hosted session asks the user, forwarded over NATS."""

    question_id: str
    agent: str
    """The asking agent's name."""
    team: str
    question: str
    seconds_left: float
    """Seconds to its deadline when it was sent; an answer later than that is not used."""
    session_id: str = ""
    """The asking agent's session (set by :meth:`ClusterClient.collect_questions`)."""


class ClusterClient:
    """A connection to a cluster (NATS) and its store (see the module docstring)."""

    def __init__(self, nc: Client, buckets: Buckets, store: Store, names: ClusterNames) -> None:
        self._nc = nc
        self._buckets = buckets
        self._store = store
        self.names = names
        self._directory = WorkerDirectory(buckets.workers)
        self._placements = Placements(buckets.placements)
        self._leases = BusLeases(buckets.leases, "client")

    @classmethod
    async def connect(
        cls, bus_url: str, store_url: str, *, cluster: str = DEFAULT_CLUSTER, ttl_s: float = 10.0
    ) -> Self:
        """Connect to the NATS server at ``bus_url`` and open the store ``store_url``.

        Raises:
            UserError: a URL is invalid, or the cluster uses another TTL.
            BusUnavailable: NATS cannot be reached.
            StoreError: the store cannot be opened.
        """
        names = ClusterNames(cluster)
        nc = await connect(bus_url, name="loomkin-client")
        try:
            buckets = await open_buckets(nc.jetstream(), names, ttl_s=ttl_s)
            store = await open_store(store_url)
        except BaseException:
            await nc.close()
            raise
        return cls(nc, buckets, store, names)

    async def close(self) -> None:
        """Disconnect and close the store."""
        try:
            await self._nc.close()
        finally:
            await self._store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the directory ------------------------------------------------------------------------

    async def workers(self) -> list[WorkerLoad]:
        """The live workers and their last reported load."""
        return await self._directory.live()

    async def placements(self) -> list[Placement]:
        """Every session the cluster ran or runs."""
        return await self._placements.all()

    async def placement(self, session_id: str) -> Placement:
        """Where ``session_id`` runs (and ran).

        Raises:
            NotFound: the cluster never ran it.
        """
        found = await self._placements.get(session_id)
        if found is None:
            raise NotFound(f"the cluster never ran a session {session_id!r}")
        return found

    async def holder(self, session_id: str) -> dict[str, object] | None:
        """The lease record of ``session_id`` (worker, store epoch), or ``None``."""
        return await self._leases.holder(session_id)

    # -- sessions -----------------------------------------------------------------------------

    async def start_session(
        self,
        project: str,
        goal: str,
        *,
        model: str | None = None,
        title: str = "",
        approve_all: bool = False,
        timeout_s: float = 60.0,
    ) -> tuple[str, str]:
        """Open a session on the least-loaded worker and give it ``goal``.

        Returns:
            The session's id and the id of the worker that hosts it.

        Raises:
            NoWorkers: no live worker accepts work.
            UserError: the worker refused (the message says why).
        """
        chosen = place(await self.workers())
        payload = {
            "project": project,
            "goal": goal,
            "model": model,
            "title": title,
            "approve_all": approve_all,
        }
        reply = await self._request(self.names.worker_open(chosen.worker_id), payload, timeout_s)
        return str(reply["session_id"]), str(reply["worker"])

    async def control(
        self,
        session_id: str,
        action: ControlAction,
        agent: str,
        *,
        text: str | None = None,
        mode: Literal["asap", "at_boundary"] = "asap",
        force: bool = False,
        timeout_s: float = 30.0,
    ) -> str:
        """Send a control to an agent, wherever it runs; return the control's request id.

        While the session moves between workers nobody answers: the request is tried again
        until ``timeout_s``.

        Raises:
            UserError: the worker refused it (unknown agent, nothing to resume…), or no worker
                answered in time.
        """
        payload = {"action": action, "agent": agent, "text": text, "mode": mode, "force": force}
        reply = await self._request(self.names.session_control(session_id), payload, timeout_s)
        return str(reply["request"])

    async def send(
        self, session_id: str, text: str, *, to: str | None = None, timeout_s: float = 30.0
    ) -> str:
        """Send the user's message to a session wherever it runs; return the message's id.

        It goes to the session's Concierge, or to the agent ``to``.

        Raises:
            UserError: the worker refused it (empty text, unknown agent), or no worker
                answered in time.
        """
        payload = {"action": "send", "agent": to or "", "text": text}
        reply = await self._request(self.names.session_control(session_id), payload, timeout_s)
        return str(reply["request"])

    async def act(
        self, session_id: str, action: SessionAction, *, timeout_s: float = 10.0
    ) -> JsonValue:
        """Ask the worker hosting ``session_id`` to apply ``action``; return its result (JSON).

        While the session moves between workers nobody answers: the request is sent again
        until ``timeout_s`` (it was not applied, nobody received it). Once sent, it is never
        sent twice: a worker that got it answers, or the call fails.

        Raises:
            NotFound: the worker does not know the task, agent or session named.
            InvalidTransition: the session refused it (a task already started, a claim lost).
            UserError: the worker found the action invalid.
            PolicyRefused: the session is done (nobody will host it again).
            SessionNotHosted: no worker answered in time (the session may be moving).
        """
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        subject = self.names.session_action(session_id)
        data = action.model_dump_json().encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (left := deadline - loop.time()) > 0:
            stop_if_cancelled()  # a cancellation lost in the request (cluster rule 5)
            try:
                msg = await self._nc.request(subject, data, timeout=left)
            except NoRespondersError:
                placement = await self._placements.get(session_id)
                if placement is None or placement.status == "done":
                    said = "never ran on" if placement is None else "is done on"
                    raise PolicyRefused(
                        f"session {session_id} {said} the cluster {self.names.cluster!r}: "
                        f"no worker hosts it, so it takes no {action.kind.replace('_', ' ')}"
                    ) from None
                await asyncio.sleep(min(0.2, max(left, 0)))
                continue
            except NatsTimeout:
                raise SessionNotHosted(
                    f"the worker hosting session {session_id} did not answer "
                    f"{action.kind.replace('_', ' ')} within {timeout_s:g} s (a change may "
                    "still have been applied: the session's feed will show it)"
                ) from None
            reply = json.loads(msg.data)
            if not isinstance(reply, dict):
                raise SessionNotHosted(f"the worker's answer is not an object: {reply!r:.200}")
            if not reply.get("ok"):
                raise refusal(reply.get("code"), str(reply.get("error") or "refused"))
            result: JsonValue = reply.get("result")
            return result
        raise SessionNotHosted(
            f"no worker of the cluster {self.names.cluster!r} hosts session {session_id} "
            f"now (it may be moving to another worker): try again in a moment"
        )

    async def _request(
        self, subject: str, payload: Mapping[str, object], timeout_s: float
    ) -> dict[str, object]:
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        data = json.dumps(payload).encode()
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await self._nc.request(subject, data, timeout=left)
            except NoRespondersError:
                await asyncio.sleep(min(0.2, max(left, 0)))
                continue
            except NatsTimeout:
                break
            reply: dict[str, object] = json.loads(msg.data)
            if not reply.get("ok"):
                raise UserError(str(reply.get("error") or "the worker refused the request"))
            return reply
        raise UserError(f"no worker answered on {subject} within {timeout_s:g} s")

    async def answer_permissions(
        self,
        session_id: str,
        responder: Callable[[PermissionAsk], Awaitable[PermissionDecision]],
    ) -> Subscription:
        """Answer the session's permission prompts with ``responder`` (unsubscribe to stop).

        Prompts asked before this was called are sent again by the hosting worker, once it
        hears that someone answers now. A prompt sent again after ``responder`` answered it
        gets the same decision, without asking twice.
        """
        given: dict[str, PermissionDecision] = {}

        async def on_ask(msg: Msg) -> None:
            ask = {k: str(v) for k, v in json.loads(msg.data).items()}
            request_id = ask.get("request_id", "")
            decision = given.get(request_id) or await responder(ask)
            if request_id:
                given[request_id] = decision
            await msg.respond(json.dumps({"decision": decision}).encode())

        sub = await self._nc.subscribe(self.names.session_permission(session_id), cb=on_ask)
        # After the subscription on this connection, so the prompts sent again reach it.
        await self._nc.publish(self.names.session_prompts_wanted(session_id), b"")
        return sub

    async def answer_questions(
        self, session_id: str, handler: Callable[[QuestionAsk], Awaitable[str | None]]
    ) -> Subscription:
        """Answer the questions the session's agents ask the user (unsubscribe to stop).

        ``handler`` returns the answer, or ``None`` to leave the question to its deadline; it
        is given until then (the agent is told nobody answered). Questions come one at a time.
        A question asked again (its worker died before the answer was journaled, and the next
        one forwards it anew) gets the answer already given, without asking the user twice.
        """
        given: dict[str, str] = {}

        async def on_ask(msg: Msg) -> None:
            data = json.loads(msg.data)
            ask = QuestionAsk(
                question_id=str(data["question_id"]),
                agent=str(data["agent"]),
                team=str(data.get("team", "")),
                question=str(data["question"]),
                seconds_left=float(data["seconds_left"]),
            )
            answer = given.get(ask.question_id)
            try:
                async with asyncio.timeout(ask.seconds_left):
                    if answer is None:
                        answer = await handler(ask)
            except TimeoutError:
                return  # too late: the worker stopped waiting, the question expires
            except Exception as exc:  # a failing handler answers nothing; the deadline ends it
                logger.warning("question %s: the handler failed: %s", ask.question_id, exc)
            if answer is not None:
                given[ask.question_id] = answer
            await msg.respond(json.dumps({"answer": answer}).encode())

        return await self._nc.subscribe(self.names.session_question(session_id), cb=on_ask)

    async def collect_permissions(
        self,
        on_ask: Callable[[PermissionAsk, Callable[[PermissionDecision], Awaitable[None]]], None],
    ) -> Subscription:
        """Take every session's permission prompts, to answer later (unsubscribe to stop).

        ``on_ask(ask, reply)`` gets the prompt (with its ``session_id``) at once; awaiting
        ``reply(decision)`` answers it. The first answer the worker gets wins; one not
        given by the worker's deadline is a denial there.
        """

        async def on_message(msg: Msg) -> None:
            ask = {k: str(v) for k, v in json.loads(msg.data).items()}
            parts = msg.subject.split(".")
            ask["session_id"] = parts[-2] if len(parts) >= 2 else ""

            async def reply(decision: PermissionDecision) -> None:
                await msg.respond(json.dumps({"decision": decision}).encode())

            on_ask(ask, reply)

        return await self._nc.subscribe(self.names.every_session_permission, cb=on_message)

    async def collect_questions(
        self, on_ask: Callable[[QuestionAsk, Callable[[str], Awaitable[None]]], None]
    ) -> Subscription:
        """Take every session's questions to the user, to answer later (unsubscribe to stop).

        ``on_ask(ask, reply)`` gets the question (with its ``session_id``) at once; awaiting
        ``reply(text)`` answers it. The first answer the worker gets wins; none by the
        question's deadline, and it expires there (the agent is told).
        """

        async def on_message(msg: Msg) -> None:
            data = json.loads(msg.data)
            parts = msg.subject.split(".")
            ask = QuestionAsk(
                question_id=str(data["question_id"]),
                agent=str(data["agent"]),
                team=str(data.get("team", "")),
                question=str(data["question"]),
                seconds_left=float(data["seconds_left"]),
                session_id=parts[-2] if len(parts) >= 2 else "",
            )

            async def reply(text: str) -> None:
                await msg.respond(json.dumps({"answer": text}).encode())

            on_ask(ask, reply)

        return await self._nc.subscribe(self.names.every_session_question, cb=on_message)

    async def watch_logs(self, on_grow: Callable[[str], None]) -> Subscription:
        """Call ``on_grow(session_id)`` whenever a session's log grew (unsubscribe to stop)."""

        async def on_event(msg: Msg) -> None:
            parts = msg.subject.split(".")
            on_grow(parts[-2] if len(parts) >= 2 else "")

        return await self._nc.subscribe(self.names.every_session_events, cb=on_event)

    async def follow(
        self, session_id: str, *, after: int = 0, poll_s: float = 1.0
    ) -> AsyncGenerator[RecordedEvent, None]:
        """Yield the session's events from the store until its placement is done."""
        woken = asyncio.Event()

        async def on_event(_msg: Msg) -> None:
            woken.set()

        sub = await self._nc.subscribe(self.names.session_events(session_id), cb=on_event)
        try:
            while True:
                woken.clear()
                done = (await self.placement(session_id)).status == "done"
                for recorded in await self._store.read(after, session_id=session_id):
                    after = recorded.position
                    yield recorded
                if done:
                    return
                with contextlib.suppress(TimeoutError):  # not wait_for: see stop_if_cancelled
                    async with asyncio.timeout(poll_s):
                        await woken.wait()
        finally:
            await sub.unsubscribe()

    async def wait_done(self, session_id: str) -> None:
        """Return once the session's placement is done (its work finished)."""
        async for _ in self.follow(session_id):
            pass

    async def history(self, session_id: str, *, after: int = 0) -> list[RecordedEvent]:
        """The session's events in the store after ``after``."""
        if not session_id:
            raise UserError("a session id is required")
        return await self._store.read(after, session_id=session_id)

"""The cluster a web app shows (``loomkin serve --bus``): its sessions, workers, and controls.

How this works and why:

* **One runtime that only watches.** The server's :class:`~loomkin.service.Loomkin` is
  opened on the cluster's shared store and hosts nothing; the sessions run on workers.
  :meth:`ClusterView.watching` pulls what the workers commit into it whenever NATS says a
  session's log grew (and every ``poll_s`` without a word), so the session list, agent
  cards, tasks, the feed and its live stream work as for any stored session: from events.
* **Controls go where the session runs.** Pause, resume, steer, cancel and the user's
  messages for a session running on a worker are sent over NATS to the worker holding its
  lease (:class:`~loomkin.cluster.ClusterClient`); the worker answers with the request's id
  and its effect shows in the feed like any control.
* **Permission prompts** of every session arrive here over NATS (request/reply); each waits
  until the page answers it or the session stops running. The worker's deadline still
  applies: an unanswered prompt is denied there.
* **Budgets, tasks and speculations** of a running session (their routes' reads and
  changes) go to the worker hosting it as one typed action each, over the session's one
  action subject (:mod:`loomkin.cluster.actions`); the worker applies it on its session and
  answers with the result or the facade's refusal. A session no worker runs takes none
  (a 409); one whose worker does not answer in time is unavailable for now (a 503).
* **Questions agents ask the user** arrive the same way and wait for the page's answer until
  their deadline (then the worker lets them expire and tells the agent), an answer from
  elsewhere, or the session's stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from loomkin.api.schemas import (
    BudgetOut,
    ControlOut,
    PermissionOut,
    SessionDetail,
    UserQuestionOut,
)
from loomkin.api.views import WORKING_STATUSES
from loomkin.cluster.actions import ShowBudgets
from loomkin.cluster.bus import stop_if_cancelled
from loomkin.cluster.client import PermissionAsk, QuestionAsk
from loomkin.core.events import PermissionResolved, QuestionAnswered, QuestionExpired
from loomkin.errors import LoomkinError, NotFound, ProjectionFailed, UserError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from pydantic import JsonValue

    from loomkin.cluster import ClusterClient, Placement, WorkerLoad
    from loomkin.cluster.actions import SessionAction
    from loomkin.service import AgentInfo, Loomkin

__all__ = ["ClusterView"]

logger = logging.getLogger(__name__)

_STOP_WAIT_S = 1.0
"""How long stopping waits for the follow loop before it cancels it again."""
_DETAIL_WAIT_S = 1.0
"""How long a session's view waits for its worker's budgets (the page asks every second)."""
_T = TypeVar("_T")
_BUDGETS: TypeAdapter[list[BudgetOut]] = TypeAdapter(list[BudgetOut])

ClusterControl = Literal["pause", "resume", "steer", "cancel"]
PermissionDecision = Literal["allow_once", "allow_always", "deny"]
"""An answer to a permission prompt (``loomkin.core.records``' own, spelled out: routes import
nothing below the facade)."""


@dataclass(slots=True)
class _Ask:
    """A permission prompt forwarded by a worker, waiting for the page."""

    ask: PermissionAsk
    reply: Callable[[PermissionDecision], Awaitable[None]]


@dataclass(slots=True)
class _Question:
    """A question to the user forwarded by a worker, waiting for the page until ``until``."""

    ask: QuestionAsk
    reply: Callable[[str], Awaitable[None]]
    until: float
    """Loop time of its deadline."""
    deadline: float
    """Unix seconds of its deadline (as the page shows it)."""


class ClusterView:
    """A cluster seen by a web app (see the module docstring).

    Args:
        client: The connection to the cluster (owned by the caller).
        loomkin: The runtime on the cluster's store that hosts nothing (owned by the caller).
        poll_s: How often the store is read without a notification.
        act_timeout_s: How long a budget, task or speculation action waits for the worker
            hosting its session (a session moving between workers is asked again meanwhile).
        settled_for_s: How long an answered prompt's id is remembered (longer than any
            worker's ``ask_timeout_s``: until then a worker may send the prompt again).
        settled_max: How many answered prompt ids are remembered at most (oldest go first).
    """

    def __init__(
        self,
        client: ClusterClient,
        loomkin: Loomkin,
        *,
        poll_s: float = 1.0,
        act_timeout_s: float = 10.0,
        settled_for_s: float = 3600.0,
        settled_max: int = 10_000,
    ) -> None:
        if not settled_for_s > 0 or settled_max < 1:
            raise UserError(
                f"a cluster view keeps answered prompts a positive time, at least one: "
                f"not {settled_for_s!r} s, {settled_max!r}"
            )
        self.client = client
        self._loomkin = loomkin
        self._poll_s = poll_s
        self._act_timeout_s = act_timeout_s
        self._running: set[str] = set()
        self._asks: dict[str, _Ask] = {}
        self._questions: dict[str, _Question] = {}
        self._settled: OrderedDict[str, float] = OrderedDict()
        """Prompts answered (here or elsewhere), oldest first, with the loop time they were:
        sent again by their worker, they are not shown. Kept ``settled_for_s``, at most
        ``settled_max`` of them (see :meth:`_settle`)."""
        self._settled_for_s = settled_for_s
        self._settled_max = settled_max
        self._woken = asyncio.Event()
        self._stopping = False
        self._asked = asyncio.Event()

    @property
    def name(self) -> str:
        """The cluster's name (``--cluster``)."""
        return self.client.names.cluster

    # -- keeping current -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Keep the runtime and the directory current while the block runs."""
        subs = [await self.client.watch_logs(lambda _session_id: self._woken.set())]
        task: asyncio.Task[None] | None = None
        try:
            subs.append(await self.client.collect_permissions(self._on_ask))
            subs.append(await self.client.collect_questions(self._on_question))
            await self.refresh()
            task = asyncio.get_running_loop().create_task(self._follow(), name="cluster-view")
            yield
        finally:
            if task is not None:
                # The NATS client can swallow a cancellation that lands inside one of its
                # key-value reads: the loop also stops at its next turn, and is cancelled
                # again until it has.
                self._stopping = True
                self._woken.set()
                while not task.done():
                    task.cancel()
                    await asyncio.wait([task], timeout=_STOP_WAIT_S)
                if not task.cancelled() and (failure := task.exception()) is not None:
                    logger.error("cluster view: stopped following the store: %s", failure)
            for sub in subs:
                with contextlib.suppress(Exception):  # the connection may be gone already
                    await sub.unsubscribe()

    async def _follow(self) -> None:
        while True:
            stop_if_cancelled()  # the end of watching() may come with a reply (see there)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._woken.wait()
            if self._stopping:
                return
            self._woken.clear()
            try:
                await self.refresh()
            except ProjectionFailed as exc:  # the runtime stopped: what it shows is final
                logger.critical("cluster view: the runtime stopped: %s", exc)
                raise
            except Exception as exc:  # NATS or the store away for a moment: the next try
                logger.warning("cluster view: refreshing failed: %s", exc)

    async def refresh(self) -> None:
        """Fold in what the workers committed; note which sessions run now."""
        for recorded in await self._loomkin.pull():
            event = recorded.event
            if isinstance(event, PermissionResolved):  # answered elsewhere (or force-paused)
                self._settle(str(event.request_id))
                self._asks.pop(str(event.request_id), None)
            elif isinstance(event, QuestionAnswered | QuestionExpired):
                self._questions.pop(str(event.question_id), None)
        before = dict(self._asks)  # a prompt arriving during the read is judged next time
        asked_before = dict(self._questions)  # likewise for questions
        running = {p.session_id for p in await self.client.placements() if p.status == "running"}
        # A bucket's key listing can come back short on a busy server; a session that ran, or
        # has a prompt waiting here, is only dropped once its own entry says it stopped.
        asking = {pending.ask.get("session_id", "") for pending in before.values()}
        asking |= {question.ask.session_id for question in asked_before.values()}
        for session_id in (self._running | asking) - running - {""}:
            with contextlib.suppress(NotFound):
                if (await self.client.placement(session_id)).status == "running":
                    running.add(session_id)
        self._running = running
        for request_id, pending in before.items():
            if pending.ask.get("session_id") not in running:
                self._asks.pop(request_id, None)  # it stopped (or moved): the worker asks again
        now = asyncio.get_running_loop().time()
        for question_id, question in asked_before.items():
            # Its session stopped (or moved: the next worker asks again), or it expired; a
            # question asked again meanwhile (another object) stays.
            gone = question.ask.session_id not in running or question.until <= now
            if gone and self._questions.get(question_id) is question:
                del self._questions[question_id]

    def _settle(self, request_id: str) -> None:
        """Note a prompt as answered; forget those noted ``settled_for_s`` ago or more.

        A worker sends a prompt again only while it still waits for its answer, which is
        never longer than its deadline (``HostOptions.ask_timeout_s``, minutes): by the time
        an id is forgotten, no worker asks with it any more. The bound on the count keeps a
        view that sees very many prompts small all the same.
        """
        now = asyncio.get_running_loop().time()
        settled = self._settled
        settled[request_id] = now
        settled.move_to_end(request_id)
        while settled and (
            len(settled) > self._settled_max
            or next(iter(settled.values())) <= now - self._settled_for_s
        ):
            settled.popitem(last=False)

    def _on_ask(
        self, ask: PermissionAsk, reply: Callable[[PermissionDecision], Awaitable[None]]
    ) -> None:
        request_id = ask.get("request_id", "")
        if request_id and request_id not in self._settled:
            self._asks[request_id] = _Ask(ask, reply)
            self._asked.set()
            self._woken.set()

    def _on_question(self, ask: QuestionAsk, reply: Callable[[str], Awaitable[None]]) -> None:
        until = asyncio.get_running_loop().time() + ask.seconds_left
        # A question asked again (by the worker that took the session over) replaces the old.
        self._questions[ask.question_id] = _Question(
            ask, reply, until=until, deadline=time.time() + ask.seconds_left
        )
        self._asked.set()
        self._woken.set()

    # -- what the page reads -------------------------------------------------------------------

    def runs(self, session_id: str) -> bool:
        """Whether ``session_id`` runs on a worker of the cluster now (it can be driven)."""
        return session_id in self._running

    def running(self) -> list[str]:
        """The sessions running on the cluster's workers now."""
        return sorted(self._running)

    async def wait_prompt(self, session_id: str) -> str:
        """Wait until a permission prompt of ``session_id`` waits here; return its request id."""
        while True:
            for request_id, pending in self._asks.items():
                if pending.ask.get("session_id") == session_id:
                    return request_id
            self._asked.clear()
            await self._asked.wait()

    async def wait_question(self, session_id: str) -> str:
        """Wait until a question of ``session_id`` to the user waits here; return its id."""
        while True:
            for question_id, pending in self._questions.items():
                if pending.ask.session_id == session_id:
                    return question_id
            self._asked.clear()
            await self._asked.wait()

    def questions(
        self, session_id: str, agents: dict[str, str] | None = None
    ) -> list[UserQuestionOut]:
        """The questions of ``session_id`` to the user that wait here, oldest first.

        ``agents`` maps names to ids (default: the session's agents as the log knows them).
        """
        if agents is None:
            agents = {a.name: a.agent_id for a in self._loomkin.stored_agents(session_id)}
        now = asyncio.get_running_loop().time()
        return [
            UserQuestionOut(
                question_id=q.ask.question_id,
                agent_id=agents.get(q.ask.agent, ""),
                agent=q.ask.agent,
                team=q.ask.team,
                question=q.ask.question,
                deadline=q.deadline,
                seconds_left=max(0.0, q.until - now),
            )
            for q in self._questions.values()
            if q.ask.session_id == session_id and q.until > now
        ]

    async def answer_question(
        self, session_id: str, question_id: str, text: str
    ) -> UserQuestionOut:
        """Answer a question to the user a worker forwarded; return the question answered.

        Raises:
            NotFound: no such question waits here (answered, expired, or the session moved on).
        """
        waiting = {q.question_id: q for q in self.questions(session_id)}
        if question_id not in waiting:
            raise NotFound(
                f"no open question {question_id[:80]!r} to the user in session {session_id}"
            )
        pending = self._questions.pop(question_id)
        await pending.reply(text)
        return waiting[question_id]

    async def workers(self) -> list[WorkerLoad]:
        """The live workers and their last reported load."""
        return await self.client.workers()

    async def placements(self) -> list[Placement]:
        """Every session the cluster ran or runs, with where."""
        return await self.client.placements()

    async def detail(self, detail: SessionDetail) -> SessionDetail:
        """A stored session's view, made live when it runs on a worker.

        It can then be driven from here, its agents' statuses say who works, its open
        prompts can be answered, and its budgets show their limits (asked of its worker;
        without an answer in time, the spend as the log has it).
        """
        session_id = detail.session.session_id
        if not self.runs(session_id):
            return detail
        budgets = detail.budgets
        try:
            budgets = await self.act(
                session_id, ShowBudgets(), _BUDGETS.validate_python, timeout_s=_DETAIL_WAIT_S
            )
        except LoomkinError as exc:  # moving, or just done: what the log says will do
            logger.info("cluster view: budgets of %s not shown live: %s", session_id, exc)
        agents = {a.name: a.agent_id for a in detail.agents}
        prompts = [
            PermissionOut(
                request_id=p.ask["request_id"],
                agent_id=agents.get(p.ask.get("agent", ""), ""),
                agent=p.ask.get("agent", ""),
                tool=p.ask.get("tool", ""),
                category=p.ask.get("category", ""),
                arguments=_arguments(p.ask.get("arguments", "")),
                target=p.ask.get("target", ""),
                diff=p.ask.get("diff", ""),
                command=p.ask.get("command", ""),
                always=p.ask.get("always", ""),
            )
            for p in self._asks.values()
            if p.ask.get("session_id") == session_id
        ]
        working = sum(1 for a in detail.agents if a.status in WORKING_STATUSES)
        return detail.model_copy(
            update={
                "session": detail.session.model_copy(update={"open": True}),
                "permissions": prompts,
                "questions": self.questions(session_id, agents),
                "working": working,
                "budgets": budgets,
            }
        )

    async def act(
        self,
        session_id: str,
        action: SessionAction,
        into: Callable[[JsonValue], _T],
        *,
        timeout_s: float | None = None,
    ) -> _T:
        """Have the worker hosting ``session_id`` apply ``action``; return ``into(result)``.

        Raises:
            NotFound: the worker knows no such task or agent.
            InvalidTransition: the session refused it.
            UserError: the action is invalid.
            PolicyRefused: no worker hosts the session (it is done).
            SessionNotHosted: no worker answered in time (it may be moving).
            LoomkinError: the worker failed, or answered what ``into`` cannot read.
        """
        result = await self.client.act(
            session_id, action, timeout_s=self._act_timeout_s if timeout_s is None else timeout_s
        )
        try:
            return into(result)
        except ValidationError as exc:
            raise LoomkinError(
                f"the worker hosting session {session_id} answered {action.kind} with "
                f"something this server cannot read: {exc.error_count()} problem(s), "
                f"first: {exc.errors()[0].get('msg', '?')}"
            ) from None

    # -- what the page does --------------------------------------------------------------------

    def _agent(self, session_id: str, ref: str) -> AgentInfo:
        agents = self._loomkin.stored_agents(session_id)
        for info in agents:
            if ref in (info.agent_id, info.name, f"{info.team_name}/{info.name}"):
                return info
        names = ", ".join(a.name for a in agents) or "none yet"
        raise NotFound(f"no agent {ref[:100]!r} in session {session_id} (agents: {names})")

    async def control(
        self,
        session_id: str,
        agent: str,
        action: ClusterControl,
        *,
        text: str | None = None,
        mode: Literal["asap", "at_boundary"] = "asap",
        force: bool = False,
    ) -> ControlOut:
        """Send a control to an agent of a session running on a worker."""
        found = self._agent(session_id, agent)
        request_id = await self.client.control(
            session_id, action, found.agent_id, text=text, mode=mode, force=force
        )
        return ControlOut(request_id=request_id, agent_id=found.agent_id, action=action)

    async def send(self, session_id: str, text: str, *, to: str | None) -> str:
        """Send the user's message to a session running on a worker; return its id."""
        agent = self._agent(session_id, to).agent_id if to else None
        return await self.client.send(session_id, text, to=agent)

    async def answer(self, session_id: str, request_id: str, decision: PermissionDecision) -> None:
        """Answer a permission prompt a worker forwarded.

        Raises:
            NotFound: no such prompt waits here (answered already, or the session moved on).
        """
        pending = self._asks.get(request_id)
        if pending is None or pending.ask.get("session_id") != session_id:
            raise NotFound(f"no open permission prompt {request_id[:80]!r} in session {session_id}")
        del self._asks[request_id]
        self._settle(request_id)
        await pending.reply(decision)

    async def start_session(self, project: str, *, model: str | None, title: str) -> str:
        """Open a session on the least-loaded worker; return its id once this runtime has it."""
        session_id, _worker = await self.client.start_session(project, "", model=model, title=title)
        await self.refresh()
        return session_id


def _arguments(text: str) -> dict[str, JsonValue]:
    """A forwarded prompt's arguments (JSON text; ``{}`` when absent or not an object)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

"""The public runtime: open a store, open sessions on projects, talk to and control agents.

How this works and why:

One :class:`Loomkin` owns one event log (on one store) and the projections every session
shares: the :class:`~loomkin.core.state.State` of sessions, teams and agents, and the task
board behind the :class:`~loomkin.tasks.TaskService`. Opening it replays the log into those
projections; a session is materialised (its agents rebuilt from their events) when it is
opened or resumed. Everything else reads the same events: the CLI's progress display, the web
app's feed and the benchmarks subscribe to the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Self

from loomkin.agents.roles import Role
from loomkin.agents.session import SessionRuntime, SessionSettings
from loomkin.agents.tools import toolset_for
from loomkin.bus import Bus
from loomkin.core.events import RecordedEvent, SessionStarted, TeamCreated
from loomkin.core.state import State
from loomkin.core.tasks import TaskBoard
from loomkin.errors import NotFound, UserError
from loomkin.ids import SessionId, TeamId, new_id
from loomkin.llm.pricing import PriceTable
from loomkin.llm.registry import LOCAL_HINT, make_model
from loomkin.persistence import open_store
from loomkin.runtime.clock import Clock, LoopClock
from loomkin.runtime.eventlog import EventLog
from loomkin.runtime.supervisor import Supervisor
from loomkin.runtime.teams import TeamManager
from loomkin.service.session import Session
from loomkin.tasks import Scheduler, TaskService
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from types import TracebackType

    from loomkin.core.store import EventStore
    from loomkin.llm.model import Model

__all__ = ["Loomkin", "ModelFactory"]

logger = logging.getLogger(__name__)

ModelFactory = Callable[[Role, str], "Model"]
"""Builds the model an agent uses from its role and name."""


class Loomkin:
    """A runtime on one event store; hosts any number of sessions."""

    def __init__(self, store: EventStore, *, clock: Clock | None = None) -> None:
        self.store = store
        self.clock: Clock = clock or LoopClock()
        self.log = EventLog(store, clock=self.clock)
        self.state = State()
        self.board = TaskBoard()
        self.tasks = TaskService(self.log, self.board)
        self.bus = Bus()
        self.supervisor = Supervisor(clock=self.clock)
        """Owns agent activations and their helpers (restarted on crash by policy)."""
        self.timers = Supervisor(clock=self.clock)
        """Owns timers (question deadlines): not counted when waiting for quiescence."""
        self.sessions: dict[SessionId, Session] = {}
        self.scheduler = Scheduler(self.tasks, self._candidates)
        self._history: list[RecordedEvent] = []
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    async def open(cls, store: str | EventStore = "memory:", *, clock: Clock | None = None) -> Self:
        """Open a runtime on ``store`` (a URL for :func:`~loomkin.persistence.open_store`)."""
        opened = await open_store(store) if isinstance(store, str) else store
        runtime = cls(opened, clock=clock)
        await runtime.start()
        return runtime

    async def start(self) -> None:
        """Replay the log into the projections and start the log and the scheduler."""
        await self.log.start()
        self._history = await self.log.read()
        for recorded in self._history:
            self.state.apply(recorded.event)
            self.scheduler.stats.apply(recorded.event)
        self.tasks.replay(self._history)
        self.log.add_listener(self._on_event)
        self.timers.run("scheduler", self.scheduler.run_forever)

    def _on_event(self, recorded: RecordedEvent) -> None:
        self.state.apply(recorded.event)
        self.tasks.on_event(recorded)
        self.scheduler.on_event(recorded)
        session = self.sessions.get(recorded.event.session_id)
        if session is not None:
            session.runtime.on_event(recorded)

    async def close(self) -> None:
        """Stop every agent and timer, flush the log and close the store."""
        if self._closed:
            return
        self._closed = True
        await self.supervisor.stop()
        await self.timers.stop()
        await self.log.close()
        await self.store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- sessions ---------------------------------------------------------------------------------

    async def open_session(
        self,
        project: str | Path,
        *,
        model: str | Model | None = None,
        model_factory: ModelFactory | None = None,
        base_url: str | None = None,
        settings: SessionSettings | None = None,
        policy: PermissionPolicy | None = None,
        prices: PriceTable | None = None,
        title: str = "",
    ) -> Session:
        """Start a new session on ``project`` (a directory); agents are spawned lazily.

        Args:
            project: The project directory the agents work in.
            model: A ``provider:model`` spec or a model instance shared by every agent.
            model_factory: Instead of ``model``: a per-agent choice ``(role, name) -> Model``.
            base_url: An OpenAI-compatible server for ``model`` (Ollama, vLLM, llama.cpp ...).
            settings: Limits, budgets and policies (defaults when omitted).
            policy: The permission policy shared by every agent of the session.
            prices: Price table for cost accounting.
            title: A title for the session list.
        """
        root = await asyncio.to_thread(_project_root, project)
        factory = _model_factory(model, model_factory, base_url)
        session_id = SessionId(new_id("session_"))
        team_id = TeamId(new_id("team_"))
        model_name = factory(_probe_role(), "probe").name
        await self.log.append(
            SessionStarted(
                session_id=session_id,
                project_root=str(root),
                root_team_id=team_id,
                title=title,
                model=model_name,
            ),
            TeamCreated(session_id=session_id, team_id=team_id, name="root", depth=0),
        )
        return self._materialise(session_id, factory, settings, policy, prices, [])

    async def resume_session(
        self,
        session_id: str,
        *,
        model: str | Model | None = None,
        model_factory: ModelFactory | None = None,
        base_url: str | None = None,
        settings: SessionSettings | None = None,
        policy: PermissionPolicy | None = None,
        prices: PriceTable | None = None,
    ) -> Session:
        """Rebuild a session from the log and continue the work that was interrupted."""
        if session_id in self.sessions:
            return self.sessions[SessionId(session_id)]
        view = self.state.get_session(session_id)
        if view is None:
            raise NotFound(f"no session {session_id!r} in this store")
        factory = _model_factory(
            None if model_factory else (model or view.model), model_factory, base_url
        )
        events = await self.log.read(session_id=session_id)
        session = self._materialise(view.session_id, factory, settings, policy, prices, events)
        session.runtime.resume_interrupted()
        self.scheduler.kick()
        return session

    def _materialise(
        self,
        session_id: SessionId,
        factory: Callable[[Role, str], Model],
        settings: SessionSettings | None,
        policy: PermissionPolicy | None,
        prices: PriceTable | None,
        history: list[RecordedEvent],
    ) -> Session:
        view = self.state.session(session_id)
        chosen = settings or SessionSettings()
        runtime = SessionRuntime(
            session_id=session_id,
            project_root=Path(view.project_root),
            root_team_id=view.root_team_id,
            log=self.log,
            state=self.state,
            bus=self.bus,
            supervisor=self.supervisor,
            timers=self.timers,
            teams=TeamManager(self.log, self.state, max_depth=chosen.max_team_depth),
            tasks=self.tasks,
            policy=policy or PermissionPolicy(),
            prices=prices or PriceTable(),
            clock=self.clock,
            settings=chosen,
            model_factory=factory,
            toolset_factory=toolset_for,
        )
        runtime.scheduler_stats = self.scheduler.stats
        runtime.replay(history)
        runtime.coordination.start()
        session = Session(self, runtime)
        self.sessions[session_id] = session
        return session

    def session(self, session_id: str) -> Session:
        """Return an open session by id."""
        try:
            return self.sessions[SessionId(session_id)]
        except KeyError:
            raise NotFound(f"session {session_id!r} is not open in this runtime") from None

    def _candidates(self, team_id: TeamId) -> list[AgentCandidateT]:
        team = self.state.get_team(team_id)
        session = self.sessions.get(team.session_id) if team is not None else None
        return [] if session is None else session.runtime.candidates(team_id)

    # -- quiescence -------------------------------------------------------------------------------

    async def wait_idle(self) -> None:
        """Wait until no agent works and the scheduler has nothing left to assign."""
        while True:
            await self.supervisor.wait_idle()
            await self.scheduler.wait_settled()
            await asyncio.sleep(0)
            if self.supervisor.statistics().running == 0 and self.scheduler.settled():
                return


if TYPE_CHECKING:
    from loomkin.core.scheduling import AgentCandidate as AgentCandidateT


def _project_root(project: str | Path) -> Path:
    root = Path(project).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"project directory {str(root)!r} does not exist")
    return root


def _probe_role() -> Role:
    return Role(name="probe", description="", prompt="", tools=())


def _model_factory(
    model: str | Model | None, factory: ModelFactory | None, base_url: str | None
) -> ModelFactory:
    """Turn the caller's choice of model into a ``(role, agent name) -> Model`` factory."""
    if factory is not None:
        if model:
            raise UserError("pass either model or model_factory, not both")
        return factory
    if model is None or model == "":
        raise UserError(
            "no model given: pass --model PROVIDER:MODEL with its key set (e.g. openai:gpt-4.1 "
            "with OPENAI_API_KEY, or anthropic:claude-sonnet-4-5 with ANTHROPIC_API_KEY), point "
            "--base-url at an OpenAI-compatible server, run offline with --model "
            f"{LOCAL_HINT}, set [model] default in loomkin.toml, or try `loomkin demo`"
        )
    shared = make_model(model, base_url=base_url) if isinstance(model, str) else model
    return lambda _role, _name: shared

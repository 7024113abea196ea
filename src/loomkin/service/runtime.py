"""The public runtime: open a store, open sessions on projects, talk to and control agents.

How this works and why:

One :class:`Loomkin` owns one event log (on one store) and one
:class:`~loomkin.runtime.projections.ProjectionRegistry`, the log's only listener. Registered
in it, in order: the projections every session shares (the
:class:`~loomkin.core.state.State` of sessions, teams and agents, the task board behind the
:class:`~loomkin.tasks.TaskService`, the scheduler), and, per open session, that session's
own (its agents, router, questions, budgets, coordination: see
:class:`~loomkin.agents.session.SessionRuntime`). Opening the runtime replays the log into
the shared projections; opening or resuming a session replays that session's history into
its own, through the same fan-out as live events. A projection that raises halts the log and
stops every agent (fail-stop, with the projection's name and the event's position).

One writer per session: opening or resuming a session first takes its lease in the store
(:mod:`loomkin.service.leases`); every append of its events carries the lease's fence, so a
second process can neither resume it meanwhile (it gets :class:`~loomkin.errors.LeaseHeld`,
naming this one) nor, once it took the session over, be contradicted by this one (whose
appends are refused and whose agents of that session stop).

Everything else reads the same events: the CLI's progress display, the web app's feed and the
benchmarks subscribe to the log through :meth:`Session.events`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Self

from loomkin.agents.notices import TaskNoticeTexts
from loomkin.agents.roles import Role
from loomkin.agents.session import SessionRuntime
from loomkin.agents.tools import toolset_for
from loomkin.bus import Bus
from loomkin.core.events import SessionStarted, TeamCreated
from loomkin.core.state import State
from loomkin.core.tasks import TaskBoard
from loomkin.errors import NotFound, ProjectionFailed, UserError
from loomkin.ids import SessionId, TeamId, new_id
from loomkin.llm.pricing import PriceTable
from loomkin.llm.registry import LOCAL_HINT, make_model
from loomkin.persistence import open_store
from loomkin.runtime.clock import Clock, LoopClock
from loomkin.runtime.eventlog import EventLog
from loomkin.runtime.projections import ProjectionRegistry
from loomkin.runtime.supervisor import Supervisor
from loomkin.runtime.teams import TeamManager
from loomkin.service.archive import (
    read_before,
    stored_agents,
    stored_dependencies,
    stored_teams,
)
from loomkin.service.config import load_config
from loomkin.service.leases import DEFAULT_LEASE_TTL_S, SessionLeases
from loomkin.service.options import SessionOptions, session_options
from loomkin.service.records import (
    AgentInfo,
    DependencyInfo,
    Names,
    StoredSession,
    TaskInfo,
    TeamInfo,
    task_info,
)
from loomkin.service.session import Session
from loomkin.service.spend import Spend, spend_of
from loomkin.tasks import Scheduler, TaskService
from loomkin.tools.mcp import McpManager
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from types import TracebackType

    from loomkin.agents.context import ToolRunner
    from loomkin.agents.settings import SessionSettings
    from loomkin.core.events import RecordedEvent
    from loomkin.core.scheduling import AgentCandidate
    from loomkin.core.store import Store
    from loomkin.errors import StaleEpoch
    from loomkin.llm.model import Model
    from loomkin.runtime.eventlog import Subscription

__all__ = ["Loomkin", "ModelFactory", "ModelWrapper"]

logger = logging.getLogger(__name__)

ModelFactory = Callable[[Role, str], "Model"]
"""Builds the model an agent uses from its role and name."""
ModelWrapper = Callable[[ModelFactory], ModelFactory]
"""Wraps a session's model factory (see ``Loomkin.open_session(wrap_models=...)``)."""


class Loomkin:
    """A runtime on one event store; hosts any number of sessions.

    Args:
        store: The event store with its session leases.
        clock: Time source (virtual under test).
        lease_ttl_s: How long a hosted session's lease outlives this runtime's last renewal
            (renewed every third of it): how long another process waits after this one
            died on another host before it may resume the session.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> None:
        self._store = store
        self._clock: Clock = clock or LoopClock()
        self._log = EventLog(store, clock=self._clock, on_halt=self._halt, on_fenced=self._fenced)
        self._state = State()
        self._tasks = TaskService(self._log, TaskBoard(), TaskNoticeTexts())
        self._bus = Bus()
        self._supervisor = Supervisor(clock=self._clock)
        """Owns agent activations and their helpers (restarted on crash by policy)."""
        self._timers = Supervisor(clock=self._clock)
        """Owns timers (deadlines, the rebalancer, lease renewals): not counted when waiting
        for quiescence."""
        self._leases = SessionLeases(
            store, self._log, self._timers, ttl_s=lease_ttl_s, on_lost=self._lost
        )
        self._sessions: dict[SessionId, Session] = {}
        self._runtimes: dict[SessionId, SessionRuntime] = {}
        self._scheduler = Scheduler(self._tasks, self._candidates)
        self._scheduler.after_round = self._speculate_on_idle
        self._projections = ProjectionRegistry()
        self._projections.register("state", _StateProjection(self._state))
        self._projections.register("tasks", self._tasks)
        self._projections.register("scheduler", self._scheduler)
        self._closed = False
        self._replayed_to = 0
        """Position up to which :meth:`start` replayed the log into the shared projections."""
        self._caught_up: dict[SessionId, int] = {}
        """Per session resumed here: position up to which its later events were caught up."""

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        store: str | Store = "memory:",
        *,
        clock: Clock | None = None,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> Self:
        """Open a runtime on ``store`` (a URL for :func:`~loomkin.persistence.open_store`)."""
        opened = await open_store(store) if isinstance(store, str) else store
        runtime = cls(opened, clock=clock, lease_ttl_s=lease_ttl_s)
        try:
            await runtime.start()
        except BaseException:
            await runtime.close()  # the store's connections too: nobody else holds them now
            raise
        return runtime

    async def start(self) -> None:
        """Replay the log into the shared projections, then follow it and start the scheduler."""
        await self._log.start()
        history = await self._log.read()
        self._projections.replay(history)
        self._replayed_to = history[-1].position if history else 0
        self._log.add_listener(self._projections)
        self._timers.run("scheduler", self._scheduler.run_forever)

    def _halt(self, failure: ProjectionFailed) -> None:
        """The log halted (a projection failed): stop every agent now; ``close`` reaps them."""
        self._supervisor.halt()

    def _fenced(self, exc: StaleEpoch) -> None:
        """An append found its session taken over by another process."""
        self._leases.lose(exc)

    def _lost(self, session_id: SessionId, exc: StaleEpoch) -> None:
        """Another process took ``session_id`` over: stop its agents here; ``close`` reaps them."""
        self._supervisor.stop_group(session_id)

    async def close(self) -> None:
        """Stop every agent and timer, flush the log, release the leases, close the store."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._supervisor.stop()
            for runtime in self._runtimes.values():
                await runtime.mcp.close()  # after the agents: no call is left half-way
            await self._timers.stop()
            await self._log.close()
            await self._leases.release_all()
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

    # -- sessions ---------------------------------------------------------------------------------

    async def open_session(
        self,
        project: str | Path,
        *,
        model: str | Model | None = None,
        model_factory: ModelFactory | None = None,
        base_url: str | None = None,
        api_key_env: str | None = None,
        settings: SessionSettings | None = None,
        policy: PermissionPolicy | None = None,
        prices: PriceTable | None = None,
        title: str = "",
        wrap_models: ModelWrapper | None = None,
        tool_runner: ToolRunner | None = None,
    ) -> Session:
        """Start a new session on ``project`` (a directory); agents are spawned lazily.

        Whatever is not given here comes from the project's ``loomkin.toml`` (defaults when
        it has none), so a session opened from the CLI, over HTTP or from Python obeys the
        same permissions, limits, budgets and model settings.

        Args:
            project: The project directory the agents work in.
            model: A ``provider:model`` spec or a model instance shared by every agent
                (``None``: ``[model] default``).
            model_factory: Instead of ``model``: a per-agent choice ``(role, name) -> Model``.
            base_url: An OpenAI-compatible server for ``model`` (Ollama, vLLM, llama.cpp ...;
                ``None``: ``[model] base_url``, else the provider's own endpoint).
            api_key_env: The variable holding the key for ``base_url``; without it a
                ``base_url`` gets no key (see :func:`~loomkin.llm.registry.make_model`).
            settings: Limits, budgets and policies (``None``: from ``loomkin.toml``).
            policy: The permission policy shared by every agent of the session (``None``:
                ``[permissions]``).
            prices: Price table for cost accounting (``None``: ``[pricing]`` and defaults).
            title: A title for the session list.
            wrap_models: Wraps the session's model factory, whatever it was built from (a
                cluster's host places each agent's calls on a worker this way).
            tool_runner: Where checked tool calls run (``None``: in this process; a
                cluster's host runs the shell on each agent's worker).

        Raises:
            UserError: the directory does not exist or cannot be used.
            ConfigError: ``loomkin.toml`` is invalid, or the model settings are.
            MissingCredentials: the model needs a key that is not set.
        """
        root = await asyncio.to_thread(_project_root, project)
        options = await asyncio.to_thread(_project_options, root)
        if not model and model_factory is None:
            model = options.model
        factory = _model_factory(model, model_factory, *_endpoint(base_url, api_key_env, options))
        if wrap_models is not None:
            factory = wrap_models(factory)
        session_id = SessionId(new_id("session_"))
        team_id = TeamId(new_id("team_"))
        model_name = factory(_probe_role(), "probe").name
        chosen = options.settings if settings is None else settings
        policy = options.policy if policy is None else policy
        prices = options.prices if prices is None else prices
        await self._leases.acquire(session_id)  # a new id: nobody else can hold it
        try:
            # MCP servers start before the session is recorded: one that fails leaves no session.
            mcp = await self._start_mcp(session_id, root, chosen)
        except BaseException:
            await self._forget(session_id)
            raise
        try:
            await self._log.append(
                SessionStarted(
                    session_id=session_id,
                    project_root=str(root),
                    root_team_id=team_id,
                    title=title,
                    model=model_name,
                ),
                TeamCreated(session_id=session_id, team_id=team_id, name="root", depth=0),
            )
            return await self._materialise(
                session_id, factory, chosen, policy, prices, mcp, tool_runner
            )
        except BaseException:
            await mcp.close()
            await self._forget(session_id)
            raise

    async def resume_session(
        self,
        session_id: str,
        *,
        model: str | Model | None = None,
        model_factory: ModelFactory | None = None,
        base_url: str | None = None,
        api_key_env: str | None = None,
        settings: SessionSettings | None = None,
        policy: PermissionPolicy | None = None,
        prices: PriceTable | None = None,
        take_over: bool = False,
        wrap_models: ModelWrapper | None = None,
        tool_runner: ToolRunner | None = None,
    ) -> Session:
        """Rebuild a session from the log and continue the work that was interrupted.

        The model is the session's own unless ``model`` or ``model_factory`` is given; the
        rest, when not given, comes from the project's ``loomkin.toml`` as in
        :meth:`open_session`.

        The session's lease is taken first, so no other process writes it meanwhile. A
        holder on this host whose process is gone is taken over at once; one elsewhere is
        waited out (its lease expires after its TTL) unless ``take_over`` is set.

        Args:
            session_id: The stored session.
            model: A ``provider:model`` spec or model instance (default: the session's).
            model_factory: Instead of ``model``: a per-agent choice ``(role, name) -> Model``.
            base_url: An OpenAI-compatible server for ``model``.
            api_key_env: The variable holding the key for ``base_url``.
            settings: Limits, budgets and policies (``None``: from ``loomkin.toml``).
            policy: The permission policy shared by every agent of the session.
            prices: Price table for cost accounting.
            take_over: Take the session from a live holder (another process now running
                it); that process's next append is refused and its agents stop.
            wrap_models: Wraps the session's model factory (see :meth:`open_session`).
            tool_runner: Where checked tool calls run (see :meth:`open_session`).

        Raises:
            NotFound: the store has no such session.
            LeaseHeld: another live process runs it; the message names that process.
        """
        if session_id in self._sessions:
            return self._sessions[SessionId(session_id)]
        await self._catch_up(SessionId(session_id))  # a session created elsewhere since start
        view = self._state.get_session(session_id)
        if view is None:
            raise NotFound(f"no session {session_id!r} in this store")
        options = await asyncio.to_thread(_project_options, Path(view.project_root))
        factory = _model_factory(
            None if model_factory else (model or view.model),
            model_factory,
            *_endpoint(base_url, api_key_env, options),
        )
        if wrap_models is not None:
            factory = wrap_models(factory)
        chosen = options.settings if settings is None else settings
        policy = options.policy if policy is None else policy
        prices = options.prices if prices is None else prices
        await self._leases.acquire(view.session_id, take_over=take_over)
        try:
            # The lease first, then the history: whatever the last holder committed is in it.
            await self._catch_up(view.session_id)
            mcp = await self._start_mcp(view.session_id, Path(view.project_root), chosen)
        except BaseException:
            await self._forget(view.session_id)
            raise
        try:
            session = await self._materialise(
                view.session_id, factory, chosen, policy, prices, mcp, tool_runner
            )
        except BaseException:
            await mcp.close()
            await self._forget(view.session_id)
            raise
        self._runtimes[view.session_id].resume_interrupted()
        self._scheduler.kick()
        return session

    async def _catch_up(self, session_id: SessionId) -> None:
        """Fold the session's events committed elsewhere since :meth:`start` into the runtime.

        Only the shared projections need it: the session's own replay reads its whole history.
        """
        after = self._caught_up.get(session_id, self._replayed_to)
        fresh = await self._log.read(after, session_id=session_id)
        if fresh:
            self._projections.catch_up(fresh)
            self._caught_up[session_id] = fresh[-1].position

    async def _forget(self, session_id: SessionId) -> None:
        """Undo a half-opened session: stop following it and give its lease back."""
        self._projections.detach(session_id)
        self._sessions.pop(session_id, None)
        self._runtimes.pop(session_id, None)
        await self._leases.release(session_id)

    async def _start_mcp(
        self, session_id: SessionId, root: Path, settings: SessionSettings
    ) -> McpManager:
        """Start the session's MCP servers (their tasks run under the timer supervisor).

        Raises:
            McpServerFailed: a server did not start (the message names it).
            ConfigError: the ``mcp`` extra is not installed.
        """
        mcp = McpManager(
            settings.mcp_servers, project_root=root, supervisor=self._timers, group=session_id
        )
        await mcp.start()
        return mcp

    async def _materialise(
        self,
        session_id: SessionId,
        factory: Callable[[Role, str], Model],
        chosen: SessionSettings,
        policy: PermissionPolicy | None,
        prices: PriceTable | None,
        mcp: McpManager,
        tool_runner: ToolRunner | None,
    ) -> Session:
        """Build the session's parts and replay its history into them."""
        view = self._state.session(session_id)
        runtime = SessionRuntime(
            session_id=session_id,
            project_root=Path(view.project_root),
            root_team_id=view.root_team_id,
            settings=chosen,
            log=self._log,
            clock=self._clock,
            state=self._state,
            bus=self._bus,
            tasks=self._tasks,
            stats=self._scheduler.stats,
            supervisor=self._supervisor,
            timers=self._timers,
            teams=TeamManager(self._log, self._state, max_depth=chosen.max_team_depth),
            policy=policy or PermissionPolicy(),
            prices=prices or PriceTable(),
            models=factory,
            toolsets=functools.partial(toolset_for, mcp=mcp),
            mcp=mcp,
            tool_runner=tool_runner,
        )
        await self._projections.attach(
            session_id,
            runtime.projections(),
            lambda: self._log.read(session_id=session_id),
        )
        session = Session(
            runtime,
            log=self._log,
            state=self._state,
            tasks=self._tasks,
            scheduler=self._scheduler,
            leases=self._leases,
        )
        # A bet too big to place now may fit later, when no event would plan again.
        runtime.coordination.speculation.wake = self._scheduler.kick
        self._runtimes[session_id] = runtime
        self._sessions[session_id] = session
        return session

    def session(self, session_id: str) -> Session:
        """Return an open session by id."""
        try:
            return self._sessions[SessionId(session_id)]
        except KeyError:
            raise NotFound(f"session {session_id!r} is not open in this runtime") from None

    def sessions(self) -> list[StoredSession]:
        """Every session in the store, oldest first (``open``: hosted by this runtime)."""
        return [
            StoredSession(
                session_id=v.session_id,
                project_root=v.project_root,
                title=v.title,
                model=v.model,
                status=v.status,
                open=v.session_id in self._sessions,
            )
            for v in self._state.sessions()
        ]

    def stored_session(self, session_id: str) -> StoredSession:
        """One session of the store (``NotFound`` if the store has none by that id)."""
        for stored in self.sessions():
            if stored.session_id == session_id:
                return stored
        raise NotFound(f"no session {session_id!r} in this store")

    def events(
        self, session_id: str, *, after: int | None = 0, maxsize: int = 10_000
    ) -> Subscription:
        """Subscribe to a stored session's events, open here or not (``after=None``: live only)."""
        self.stored_session(session_id)
        return self._log.subscribe(after=after, session_id=session_id, maxsize=maxsize)

    async def history(
        self, session_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """A stored session's committed events after ``after``, oldest first (at most ``limit``)."""
        self.stored_session(session_id)
        if limit is None:
            return await self._log.read(after, session_id=session_id)
        return await self._store.read(after, limit=limit, session_id=session_id)

    async def history_before(
        self,
        session_id: str,
        *,
        before: int | None = None,
        limit: int = 500,
        kinds: frozenset[str] | None = None,
        scan: int | None = None,
    ) -> list[RecordedEvent]:
        """A stored session's newest ``limit`` events before ``before``, oldest first.

        ``before=None``: the newest events of the log. Reads only about as many events as it
        returns, so a page showing the end of a long session never reads it all. ``kinds``:
        only events of these kinds (e.g. the chat's, which may lie far back); ``scan``: look
        at most this many log positions back.
        """
        self.stored_session(session_id)
        newest = self._log.last_position + 1
        end = newest if before is None else min(before, newest)
        return await read_before(
            self._store, session_id, before=end, limit=limit, kinds=kinds, scan=scan
        )

    def stored_agents(self, session_id: str) -> list[AgentInfo]:
        """The agents of a stored session, open here or not, as its log last left them."""
        self.stored_session(session_id)
        return stored_agents(self._state, session_id)

    def stored_teams(self, session_id: str) -> list[TeamInfo]:
        """The teams of a stored session, open here or not, in creation order."""
        self.stored_session(session_id)
        return stored_teams(self._state, session_id)

    def stored_dependencies(self, session_id: str) -> list[DependencyInfo]:
        """The dependencies between the tasks of a stored session, open here or not."""
        self.stored_session(session_id)
        return stored_dependencies(self._tasks.board, session_id)

    async def spend(self, session_id: str) -> Spend:
        """What a stored session spent (tokens, cost, model calls), by agent and by team."""
        self.stored_session(session_id)
        names = {str(t.team_id): t.name for t in self._state.teams(session_id)}
        return spend_of(session_id, await self._log.read(session_id=session_id), names)

    def tasks(self, session_id: str) -> list[TaskInfo]:
        """The tasks of a stored session, open here or not, in creation order."""
        self.stored_session(session_id)
        return [task_info(v) for v in self._tasks.board.tasks() if v.session_id == session_id]

    def names(self) -> Names:
        """Name lookups (agents, teams, tasks) for rendering events of any session."""
        return Names(self._state, self._tasks.board)

    @property
    def last_position(self) -> int:
        """Position of the newest event in the log."""
        return self._log.last_position

    def _candidates(self, team_id: TeamId) -> list[AgentCandidate]:
        team = self._state.get_team(team_id)
        runtime = self._runtimes.get(team.session_id) if team is not None else None
        return [] if runtime is None else runtime.directory.candidates(team_id)

    # -- quiescence -------------------------------------------------------------------------------

    async def _speculate_on_idle(self) -> None:
        """After a planning round: idle agents may start waiting tasks speculatively."""
        load = self._tasks.board.load()
        for runtime in list(self._runtimes.values()):
            idle = [
                m
                for m in runtime.directory.members()
                if m.status == "idle"
                and m.task_id is None
                and not load.get(m.agent_id)
                and m.role not in runtime.settings.coordination_roles
            ]
            await runtime.coordination.speculation.offer_idle(idle)

    async def wait_idle(self) -> None:
        """Wait until no agent of any session works and the scheduler has nothing to assign.

        Raises:
            ProjectionFailed: the runtime stopped because a projection failed.
        """
        while True:
            self._raise_if_halted()
            await self._supervisor.wait_idle()
            await self._scheduler.wait_settled()
            speculation = [r.coordination.speculation for r in self._runtimes.values()]
            for spec in speculation:
                await spec.wait_settled()  # a merge or a discard can wake agents again
            await asyncio.sleep(0)
            quiet = all(spec.settled() for spec in speculation)
            if quiet and self._supervisor.statistics().running == 0 and self._scheduler.settled():
                self._raise_if_halted()
                return

    async def pull(self) -> list[RecordedEvent]:
        """Fold in the events other processes committed to the store since; return them.

        For a runtime that only watches a shared store (the web app or the terminal of a
        cluster, whose sessions run on workers): their sessions, agents, tasks and feeds
        become current here, and live event streams get the new events. Such a runtime
        hosts nothing and appends nothing itself.

        Raises:
            ProjectionFailed: a projection failed on one of them (the runtime stops).
        """
        self._raise_if_halted()
        fresh = await self._log.pull()
        if fresh:
            # Folded now: resuming one of these sessions here later must not fold them again.
            newest = fresh[-1].position
            self._replayed_to = max(self._replayed_to, newest)
            self._caught_up = {sid: max(at, newest) for sid, at in self._caught_up.items()}
        return fresh

    def _raise_if_halted(self) -> None:
        failure = self._log.halted
        if failure is not None:
            raise failure


class _StateProjection:
    """The :class:`State` fed by the registry (it is pure: nothing to act on)."""

    __slots__ = ("_state",)

    def __init__(self, state: State) -> None:
        self._state = state

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        self._state.apply(recorded.event)

    def caught_up(self) -> None:
        """Nothing to act on."""


def _project_root(project: str | Path) -> Path:
    text = str(project)
    if "\x00" in text:
        raise UserError("the project directory's name contains a NUL byte")
    try:
        root = Path(project).expanduser().resolve()
        exists = root.is_dir()
    except (OSError, RuntimeError) as exc:  # too long, a symlink loop, no home directory
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"cannot use the project directory {_shown(text)!r}: {reason}") from None
    if not exists:
        raise UserError(f"project directory {_shown(str(root))!r} does not exist")
    return root


def _shown(text: str, limit: int = 200) -> str:
    """``text`` cut for an error message (a 5,000-character path must not flood it)."""
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]}"


def _project_options(root: Path) -> SessionOptions:
    """The session options of the project's ``loomkin.toml`` (defaults when it has none)."""
    return session_options(load_config(root))


def _endpoint(
    base_url: str | None, api_key_env: str | None, options: SessionOptions
) -> tuple[str | None, str | None]:
    """The server and key variable of a session: the caller's, else ``loomkin.toml``'s.

    A ``base_url`` given by the caller never takes the toml's key variable: that variable
    was named for the toml's own server.
    """
    if base_url:
        return base_url, api_key_env
    return options.base_url, api_key_env or options.api_key_env


def _probe_role() -> Role:
    return Role(name="probe", description="", prompt="", tools=())


def _model_factory(
    model: str | Model | None,
    factory: ModelFactory | None,
    base_url: str | None,
    api_key_env: str | None,
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
            "[model] base_url in loomkin.toml (or --base-url, without --bus) at an "
            "OpenAI-compatible server, run offline with --model "
            f"{LOCAL_HINT}, set [model] default in loomkin.toml, or try `loomkin demo`"
        )
    shared = (
        make_model(model, base_url=base_url, api_key_env=api_key_env)
        if isinstance(model, str)
        else model
    )
    return lambda _role, _name: shared

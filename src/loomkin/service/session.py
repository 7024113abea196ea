"""The session handle: what the CLI, the web app and embedding code use to drive a session.

Everything here either reads the projections into frozen records (:mod:`loomkin.service.records`)
or journals a command and lets the runtime act on it. A session is driven only through this
handle: it hands out no agent, no log, no board.
"""

from __future__ import annotations

import asyncio
from pathlib import PurePath
from typing import TYPE_CHECKING

from loomkin.coordination import WRITE_TOOLS
from loomkin.core.events import (
    AgentPlaced,
    AgentStatusChanged,
    BudgetsChanged,
    ControlApplied,
    ControlRequested,
    ModelCallCompleted,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.errors import NotFound, UserError
from loomkin.ids import RequestId, TaskId, new_id
from loomkin.service.coordination import CoordinationCommands
from loomkin.service.previews import PermissionPreview, permission_preview
from loomkin.service.questions import UserQuestion, open_user_questions, user_question
from loomkin.service.records import (
    AgentInfo,
    BudgetStatus,
    DependencyInfo,
    McpServerInfo,
    Names,
    Summary,
    TaskInfo,
    TeamInfo,
    mcp_server_info,
    task_info,
)
from loomkin.service.scaling import TeamScaleInfo, scale_info, set_team_scale
from loomkin.service.speculation import (
    SpeculationInfo,
    SpeculationSummary,
    assumption_specs,
    speculation_infos,
    summary_of,
)
from loomkin.tasks import DependencySpec, WorkerRef

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from loomkin.agents.agent import Agent
    from loomkin.agents.budgets import Budgets
    from loomkin.agents.desk import PermissionResponder
    from loomkin.agents.session import SessionRuntime
    from loomkin.core.events import RecordedEvent
    from loomkin.core.events.base import JSON
    from loomkin.core.records import DepKind, PauseMode, PermissionDecision
    from loomkin.core.state import State
    from loomkin.core.store import Lease
    from loomkin.core.tasks import TaskBoard
    from loomkin.runtime.eventlog import EventLog, Subscription
    from loomkin.service.leases import SessionLeases
    from loomkin.service.records import AgentSnapshot, PendingPermission
    from loomkin.tasks import Scheduler, TaskService

__all__ = ["Session"]


class Session(CoordinationCommands):
    """A live session: send messages, watch events, steer agents, answer permission prompts."""

    def __init__(
        self,
        runtime: SessionRuntime,
        *,
        log: EventLog,
        state: State,
        tasks: TaskService,
        scheduler: Scheduler,
        leases: SessionLeases,
    ) -> None:
        self._runtime = runtime
        self._log = log
        self._state = state
        self._tasks = tasks
        self._scheduler = scheduler
        self._leases = leases

    @property
    def session_id(self) -> str:
        return self._runtime.session_id

    @property
    def project_root(self) -> str:
        return str(self._runtime.ctx.project_root)

    @property
    def _board(self) -> TaskBoard:
        return self._tasks.board

    # -- talking and watching -------------------------------------------------------------------

    async def send(self, text: str, *, to: str | None = None) -> str:
        """Send the user's message (to the Concierge unless ``to`` names an agent)."""
        return await self._runtime.post_user_message(text, to=to)

    def events(self, *, after: int | None = 0) -> Subscription:
        """Subscribe to this session's events (``after=None``: live only)."""
        return self._log.subscribe(after=after, session_id=self.session_id)

    async def history(self, *, after: int = 0) -> list[RecordedEvent]:
        """This session's committed events after position ``after``, oldest first."""
        return await self._log.read(after, session_id=self.session_id)

    def names(self) -> Names:
        """Name lookups (agents, teams, tasks) for rendering this session's events."""
        return Names(self._state, self._board)

    async def wait_idle(self) -> None:
        """Wait until this session's agents are all idle, paused or waiting for the user.

        A question an agent asked the user keeps the session open until it is answered or
        its deadline passes (the asker may have more to do with the answer).
        Other sessions of the runtime may still work. The scheduler must have nothing left to
        assign too, since an assignment wakes an agent again.

        Raises:
            ProjectionFailed: the runtime stopped because a projection failed.
            StaleEpoch: another process took the session over; its agents stopped here.
        """
        runtime, scheduler = self._runtime, self._scheduler
        while True:
            self._raise_if_halted()
            await runtime.wait_idle()
            await scheduler.wait_settled()
            speculation = runtime.coordination.speculation
            await speculation.wait_settled()  # a merge or a discard can wake agents again
            await asyncio.sleep(0)
            if runtime.running() == 0 and scheduler.settled() and speculation.settled():
                self._raise_if_halted()
                if not runtime.questions.user_questions():
                    return
                # A question to the user ends with an answer or at its deadline; either one
                # reaches the asker as a message and may set it working again.
                await runtime.questions.wait_user_questions()

    async def wait_finished(self) -> None:
        """Wait until the session has nothing left to do, paused agents included.

        As :meth:`wait_idle`, and then as long as an agent is paused: a paused agent still
        has its loop to finish, which a resume (the web app, ``loomkin agent resume``, a
        cluster control, :meth:`resume`) starts again and a cancel ends. What a run in front
        of a web app or on a cluster waits for; a terminal run, which nobody can resume an
        agent of, waits with :meth:`wait_idle`.

        Raises:
            ProjectionFailed: the runtime stopped because a projection failed.
            StaleEpoch: another process took the session over; its agents stopped here.
        """
        while True:
            await self.wait_idle()
            if not self._paused():
                return
            async with self.events(after=None) as live:
                if not self._paused():
                    continue  # resumed (or cancelled) before the subscription began
                async for recorded in live:
                    event = recorded.event
                    if isinstance(event, AgentStatusChanged) and event.previous == "paused":
                        break
                else:
                    self._raise_if_halted()
                    return  # the log closed (the runtime stopped): nothing will resume them

    def _paused(self) -> bool:
        return any(agent.status == "paused" for agent in self.agents())

    def _raise_if_halted(self) -> None:
        failure = self._log.halted or self._leases.lost(self.session_id)
        if failure is not None:
            raise failure

    def lease(self) -> Lease | None:
        """The lease this runtime holds on the session (its holder, host, pid, epoch, expiry).

        ``None`` once it was released (the runtime closed) or taken over by another process.
        """
        return None if self._leases.lost(self.session_id) else self._leases.lease(self.session_id)

    # -- permissions and budgets ----------------------------------------------------------------

    def set_permission_responder(self, responder: PermissionResponder | None) -> None:
        """Answer permission prompts automatically (``--yes``, the demo); ``None`` to ask."""
        self._runtime.permissions.responder = responder

    async def answer_permission(self, request_id: str, decision: PermissionDecision) -> None:
        """Answer a pending permission prompt: ``allow_once``, ``allow_always`` or ``deny``."""
        self._runtime.permissions.answer(request_id, decision)

    def pending_permissions(self) -> list[PendingPermission]:
        """Permission prompts waiting for an answer, oldest first."""
        return self._runtime.permissions.prompts()

    def permission_preview(self, prompt: PendingPermission) -> PermissionPreview:
        """What allowing ``prompt`` would do (a diff, a command) and what "always" covers."""
        return permission_preview(prompt, self._runtime.ctx.project_root)

    # -- questions to the user ------------------------------------------------------------------

    def questions_for_user(self) -> list[UserQuestion]:
        """Questions agents asked the user that are still open, oldest first."""
        return open_user_questions(self._runtime.questions, self.names())

    async def answer_question(self, question_id: str, text: str) -> UserQuestion:
        """Answer a question an agent asked the user; the agent gets it as a message.

        Returns:
            The question answered.

        Raises:
            NotFound: no such question was asked of the user.
            InvalidTransition: it was answered already, or it expired.
            UserError: ``text`` is empty.
        """
        book = self._runtime.questions
        asked = await book.answer_by_user(question_id, text)
        return user_question(asked, self.names(), book.now())

    async def set_budgets(self, budgets: Budgets, *, by: str = "user") -> None:
        """Replace the session's budgets (journaled); agents paused on a budget can resume."""
        await self._log.append(
            BudgetsChanged(
                session_id=self._runtime.session_id,
                session_usd=budgets.session_usd,
                team_usd=budgets.team_usd,
                agent_usd=budgets.agent_usd,
                session_tokens=budgets.session_tokens,
                team_tokens=budgets.team_tokens,
                agent_tokens=budgets.agent_tokens,
                changed_by=by,
            )
        )

    def budgets(self) -> list[BudgetStatus]:
        """The session's spending, then each team's, against the limits."""
        book = self._runtime.budgets
        limits = book.limits
        spent = book.spent()
        out = [
            BudgetStatus(
                scope="session",
                team_id=None,
                name="session",
                cost_usd=spent.cost_usd,
                tokens=spent.tokens,
                limit_usd=limits.session_usd,
                limit_tokens=limits.session_tokens,
            )
        ]
        for team in self._state.teams(self.session_id):
            used = book.team_spent(team.team_id)  # its sub-teams' spend included
            if not team.agent_ids and not (used.tokens or used.cost_usd):
                continue
            out.append(
                BudgetStatus(
                    scope="team",
                    team_id=team.team_id,
                    name=team.name,
                    cost_usd=used.cost_usd,
                    tokens=used.tokens,
                    limit_usd=limits.team_usd,
                    limit_tokens=limits.team_tokens,
                )
            )
        return out

    # -- MCP servers ----------------------------------------------------------------------------

    def mcp_servers(self) -> list[McpServerInfo]:
        """The session's MCP servers: state, restarts, last error and tools."""
        return [mcp_server_info(state) for state in self._runtime.mcp.states()]

    # -- teams, agents, tasks -------------------------------------------------------------------

    async def create_team(self, name: str, *, parent: str | None = None, purpose: str = "") -> str:
        """Create a team under ``parent`` (a team name or id; default: the root team)."""
        runtime = self._runtime
        parent_id = runtime.resolve_team(parent) if parent else runtime.root_team_id
        team_id, _ = await runtime.teams.spawn_team(
            name=name, parent_team_id=parent_id, purpose=purpose, roles=(), spawned_by=None
        )
        return team_id

    async def spawn_agent(self, name: str, role: str, *, team: str | None = None) -> AgentInfo:
        """Add an agent with ``role`` (a role name or a description) to ``team`` (default: root)."""
        runtime = self._runtime
        team_id = runtime.resolve_team(team) if team else runtime.root_team_id
        member = await runtime.teams.spawn_agent(team_id, name, role)
        return self.agent(member.agent_id)

    # -- adaptive teams --------------------------------------------------------------------------

    def team_scale(self, team: str | None = None) -> TeamScaleInfo:
        """``team``'s size, backlog, ratio and bounds as the autoscaler sees them."""
        runtime = self._runtime
        return scale_info(runtime, runtime.resolve_team(team) if team else runtime.root_team_id)

    async def scale_team(
        self,
        team: str | None = None,
        *,
        min_agents: int | None = None,
        max_agents: int | None = None,
        pin: int | None = None,
        clear: bool = False,
        by: str = "user",
        reason: str = "",
    ) -> TeamScaleInfo:
        """Pin or bound ``team``'s worker agents for the autoscaler (``clear``: the defaults).

        Raises:
            UserError: a negative value, min above max, a pin with bounds, above the limit.
        """
        runtime = self._runtime
        team_id = runtime.resolve_team(team) if team else runtime.root_team_id
        return await set_team_scale(
            runtime,
            self._log,
            team_id,
            min_agents=min_agents,
            max_agents=max_agents,
            pinned=pin,
            clear=clear,
            by=by,
            reason=reason,
        )

    async def claim_task(self, task_id: str, agent: str) -> None:
        """Give a ready task queued on a busy agent to ``agent`` (the work-stealing claim).

        Raises:
            InvalidTransition: the task was started, or another claim won.
        """
        target = self._runtime.agent(agent)
        view = self._tasks.task(task_id)
        owner = None if view.owner is None else view.owner.agent_id
        worker = WorkerRef(agent_id=target.agent_id, name=target.name, team_id=target.team_id)
        await self._tasks.claim(
            view.task_id, worker, expected_owner=owner, reason="claimed for it by the user"
        )

    async def record_placement(
        self, agent_id: str, worker: str, *, epoch: int, reason: str = ""
    ) -> None:
        """Journal that agent ``agent_id``'s model calls run on ``worker`` now (a cluster)."""
        agent = self._runtime.agent(agent_id)
        await self._log.append(
            AgentPlaced(
                session_id=self._runtime.session_id,
                agent_id=agent.agent_id,
                worker=worker,
                epoch=epoch,
                reason=reason,
            )
        )

    def agent(self, ref: str) -> AgentInfo:
        """An agent by id, ``name`` or ``team/name`` (``NotFound`` lists the agents there are)."""
        return self._info(self._runtime.agent(ref))

    def agents(self) -> list[AgentInfo]:
        """Every agent of the session, in spawn order."""
        return [self._info(a) for a in self._runtime.directory.agents()]

    def _info(self, agent: Agent) -> AgentInfo:
        m = agent.memory
        team = self._state.get_team(m.team_id)
        return AgentInfo(
            agent_id=m.agent_id,
            name=m.name,
            role=m.role,
            team_id=m.team_id,
            team_name=team.name if team else "",
            status=m.status,
            task_id=m.task_id,
            current_tool=m.current_tool,
            input_tokens=m.input_tokens,
            cached_input_tokens=m.cached_input_tokens,
            output_tokens=m.output_tokens,
            cost_usd=m.cost_usd,
            pause_queued=m.pause_pending(),
            status_reason=view.status_reason if (view := self._state.get_agent(m.agent_id)) else "",
            worker=view.worker if view else None,
            streaming_text=agent.streaming.text_so_far() if agent.streaming is not None else "",
        )

    def teams(self) -> list[TeamInfo]:
        """The session's teams (dissolved ones included), in creation order."""
        return [
            TeamInfo(
                team_id=t.team_id,
                name=t.name,
                parent_team_id=t.parent_team_id,
                depth=t.depth,
                status=t.status,
                purpose=t.purpose,
                agent_ids=tuple(t.agent_ids),
                child_ids=tuple(t.child_ids),
            )
            for t in self._state.teams(self.session_id)
        ]

    def tasks(self) -> list[TaskInfo]:
        """The session's tasks, in creation order."""
        return [task_info(v) for v in self._board.tasks() if v.session_id == self.session_id]

    def task(self, task_id: str) -> TaskInfo:
        """One task of the session (``NotFound`` if there is none)."""
        return task_info(self._board.task(TaskId(task_id)))

    def dependencies(self) -> list[DependencyInfo]:
        """The dependencies between the session's tasks."""
        return [
            DependencyInfo(
                task_id=d.task_id, depends_on=d.depends_on, kind=d.kind, milestone=d.milestone
            )
            for v in self._board.tasks()
            if v.session_id == self.session_id
            for d in self._board.dependencies(v.task_id)
        ]

    async def create_task(
        self,
        title: str,
        *,
        description: str = "",
        team: str | None = None,
        priority: int = 3,
        role: str = "",
        depends_on: tuple[str, ...] = (),
        dep_kind: DepKind = "blocks",
        milestone: str | None = None,
        assign_to: str | None = None,
        work_s: float = 0.0,
    ) -> str:
        """Put a task on a team's board (the scheduler assigns it), or give it to an agent.

        Args:
            title: Short title of the task.
            description: What to do, with acceptance criteria.
            team: The team's name or id (default: the root team).
            priority: 1 (highest) to 5.
            role: The role that should do it.
            depends_on: Task ids it waits for.
            dep_kind: How it waits for them (``blocks``, ``requires_output``, ``informs``).
            milestone: Wait only for this named milestone of each predecessor.
            assign_to: An agent (name or ``team/name``) to give it to at once.
            work_s: Simulated work, in seconds, for scripted models and benchmarks.
        """
        runtime = self._runtime
        team_id = runtime.resolve_team(team) if team else runtime.root_team_id
        owner = runtime.agent(assign_to) if assign_to is not None else None
        return await self._tasks.create(
            session_id=runtime.session_id,
            team_id=team_id,
            title=title,
            description=description,
            priority=priority,
            role=role,
            work_s=work_s,
            depends_on=[
                DependencySpec(depends_on=TaskId(d), kind=dep_kind, milestone=milestone)
                for d in depends_on
            ],
            assign_to=owner,  # one batch: the task never exists unassigned
            assigned_by="user",
        )

    # -- speculation (SPEC §3.7) ------------------------------------------------------------------

    async def speculate(
        self, task_id: str, agent: str, assumptions: Sequence[Mapping[str, JSON]]
    ) -> SpeculationInfo:
        """Start ``task_id`` on ``agent`` before its blockers finish, on stated assumptions.

        Each assumption is ``{"key": ..., "value": ...}`` (a key of the blocker's hand-off or
        milestone payload) or ``{"text": ...}`` (prose, judged by a model), optionally with
        ``"on_task"`` naming the blocker. The agent works in its own workspace until the
        blockers finish; the work is merged if the assumptions hold, else redone.
        """
        specs = assumption_specs(assumptions)
        if not specs:
            raise UserError("a speculation needs at least one assumption")
        target = self._runtime.agent(agent)
        member = self._runtime.directory.member(target.agent_id)
        if member is None:
            raise NotFound(f"no agent {agent!r} in this session")
        spec = self._runtime.coordination.speculation
        await spec.speculate(member, task_id, specs, started_by="user")
        return self.speculation(task_id)

    async def add_assumption(self, task_id: str, assumption: Mapping[str, JSON]) -> str:
        """Add an assumption to a running speculation; returns its id."""
        (spec,) = assumption_specs([assumption])
        service = self._runtime.coordination.speculation
        running = service.state.active.get(TaskId(task_id))
        if running is None:
            raise NotFound(f"task {task_id!r} has no running speculation")
        member = self._runtime.directory.member(running.started.agent_id)
        assert member is not None
        return await service.add_assumption(member, task_id, spec)

    async def cancel_speculation(self, task_id: str, *, by: str = "user") -> None:
        """Discard a running speculation (its workspace) and re-queue the task."""
        await self._runtime.coordination.speculation.cancel(task_id, by=by)

    def speculations(self) -> list[SpeculationInfo]:
        """Every speculative task of the session: assumptions, verdicts, waste."""
        mine = {str(v.task_id) for v in self._board.tasks() if v.session_id == self.session_id}
        return speculation_infos(self._runtime.coordination.speculation, mine)

    def speculation(self, task_id: str) -> SpeculationInfo:
        """The latest speculation of one task (``NotFound`` if it never had one)."""
        for info in self.speculations():
            if info.task_id == task_id:
                return info
        raise NotFound(f"task {task_id!r} has no speculation")

    def speculation_summary(self) -> SpeculationSummary:
        """Counts, waste and the learnt hit rates of the session's speculations."""
        return summary_of(self._runtime.coordination.speculation)

    async def assign_task(self, task_id: str, agent: str, *, by: str = "user") -> None:
        """Give a task to an agent (name, ``team/name`` or id); it starts when it may."""
        target = self._runtime.agent(agent)
        await self._tasks.assign(TaskId(task_id), target, by=by, reason=f"assigned by {by}")

    async def add_dependency(
        self,
        task_id: str,
        depends_on: str,
        *,
        kind: DepKind = "blocks",
        milestone: str | None = None,
    ) -> bool:
        """Make a task wait for another while work runs; False if it already did.

        Raises:
            TaskCycleError: the dependency would close a cycle.
        """
        return await self._tasks.add_dependency(
            TaskId(task_id), TaskId(depends_on), kind=kind, milestone=milestone
        )

    # -- controls -------------------------------------------------------------------------------

    async def pause(self, name: str, *, mode: PauseMode = "asap", force: bool = False) -> str:
        """Pause an agent at its next checkpoint (``asap``) or step boundary (``at_boundary``).

        ``force`` also cancels a permission prompt the agent is waiting on; without it a pause
        requested during a prompt takes effect once the prompt is answered.
        """
        agent = self._runtime.agent(name)
        return await self._runtime.control(agent, "pause", mode=mode, force=force)

    async def resume(self, name: str) -> str:
        """Resume a paused agent from its checkpoint."""
        return await self._runtime.control(self._runtime.agent(name), "resume")

    async def steer(self, name: str, text: str, *, mode: PauseMode = "asap") -> str:
        """Give an agent guidance that lands in its very next model call.

        ``asap`` cuts an answer that is streaming short (keeping what streamed) and asks the
        model again at once with the guidance; ``at_boundary`` lets the answer finish first.
        """
        agent = self._runtime.agent(name)
        return await self._runtime.control(agent, "steer", text=text, mode=mode)

    async def cancel(self, name: str) -> str:
        """Cancel an agent's current task (its partial result is kept); the agent goes idle."""
        return await self._runtime.control(self._runtime.agent(name), "cancel")

    async def inspect(self, name: str) -> AgentSnapshot:
        """A snapshot of the agent: messages, step, tool, task, iteration, usage (journaled)."""
        agent = self._runtime.agent(name)
        snapshot = agent.snapshot()
        request_id = RequestId(new_id("ctl_"))
        await self._log.append(
            ControlRequested(
                session_id=agent.session_id,
                agent_id=agent.agent_id,
                request_id=request_id,
                action="inspect",
            ),
            ControlApplied(
                session_id=agent.session_id,
                agent_id=agent.agent_id,
                request_id=request_id,
                action="inspect",
                checkpoint="immediate",
                latency_ms=0.0,
                snapshot={
                    "name": snapshot.name,
                    "status": snapshot.status,
                    "step": snapshot.step,
                    "current_tool": snapshot.current_tool,
                    "task_id": snapshot.task_id,
                    "iteration": snapshot.iteration,
                    "input_tokens": snapshot.input_tokens,
                    "output_tokens": snapshot.output_tokens,
                    "cost_usd": snapshot.cost_usd,
                },
            ),
        )
        return snapshot

    # -- results --------------------------------------------------------------------------------

    async def summary(self) -> Summary:
        """Files changed, tasks by status, decisions, tokens and cost of the session so far.

        A file counts as changed only when a write to it completed (a ``file_write`` or
        ``file_edit`` whose result was ``ok``), not because a hand-off says so: a write cut
        off by a crash may not have landed, and a hand-off may claim more than was done.
        """
        tasks: dict[str, int] = {}
        for view in self._board.tasks():
            if view.session_id == self.session_id:
                tasks[view.status] = tasks.get(view.status, 0) + 1
        calls = 0
        writes: dict[str, str] = {}
        """Call id → the file a write call targets (the latest attempt's)."""
        files: dict[str, None] = {}
        for recorded in await self.history():
            event = recorded.event
            if isinstance(event, ModelCallCompleted):
                calls += 1
            elif isinstance(event, ToolCallStarted) and event.tool in WRITE_TOOLS:
                writes[event.call_id] = event.target
            elif isinstance(event, ToolCallCompleted) and event.outcome == "ok":
                target = writes.get(event.call_id)
                if target:
                    files[self._relative(target)] = None
        agents = self.agents()
        return Summary(
            files_changed=tuple(files),
            tasks=tasks,
            decisions=tuple(
                d.title for d in self._runtime.decisions.nodes() if d.node_type == "decision"
            ),
            input_tokens=sum(a.input_tokens for a in agents),
            output_tokens=sum(a.output_tokens for a in agents),
            cost_usd=sum(a.cost_usd for a in agents),
            model_calls=calls,
            cached_input_tokens=sum(a.cached_input_tokens for a in agents),
        )

    def _relative(self, target: str) -> str:
        """A write's target as the project-relative path people read."""
        root = self._runtime.ctx.project_root
        path = PurePath(target)
        return str(path.relative_to(root)) if path.is_relative_to(root) else target

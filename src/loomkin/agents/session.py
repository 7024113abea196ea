"""One session's live side: its parts, composed once, and the projections that feed them.

How this works and why:

* :class:`SessionRuntime` owns no logic of its own beyond wiring: it builds the session's
  parts (the agent directory and factory, the message router, the question book, the budget
  book, the decision log, the coordination services, the permission desk, team operations,
  the activator), hands the agents and their tools one frozen
  :class:`~loomkin.agents.context.AgentContext` of ports, and lists the parts that are
  projections, in the order the log feeds them (:meth:`SessionRuntime.projections`).
* Everything is built from events: an agent from its ``AgentSpawned``, its memory from its
  own events, the router's subscriptions from spawns and topic events, open questions and
  votes from theirs. A restart replays the session's log through the same projections; then
  :meth:`SessionRuntime.resume_interrupted` wakes the agents that were working.
* The facade (:mod:`loomkin.service`) drives a session only through the methods below, which
  journal first and act after (a control is appended, then put on the agent's lane).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from loomkin.agents.activation import Activator
from loomkin.agents.bootstrap import post_user_message
from loomkin.agents.budgets import BudgetBook
from loomkin.agents.context import LOCAL_TOOLS, AgentContext, ToolRunner
from loomkin.agents.control import ControlCommand
from loomkin.agents.coordination import SessionCoordination
from loomkin.agents.decisionlog import DecisionLog
from loomkin.agents.desk import PermissionDesk
from loomkin.agents.directory import AgentDirectory
from loomkin.agents.factory import AgentFactory
from loomkin.agents.judge import ModelJudge
from loomkin.agents.permissions import PolicyGrants
from loomkin.agents.questions import QuestionBook
from loomkin.agents.roles import resolve_role
from loomkin.agents.router import MessageRouter
from loomkin.agents.teams import TeamOps
from loomkin.coordination import Context, MessageFactory
from loomkin.coordination.autoscale import Autoscaler
from loomkin.core.events import ControlRequested
from loomkin.errors import PolicyRefused, UserError
from loomkin.ids import RequestId, TeamId, new_id
from loomkin.tools.base import MemoryFileAccessLog
from loomkin.tools.mcp import McpManager

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.agent import Agent
    from loomkin.agents.factory import ModelFactory, ToolsetFactory
    from loomkin.agents.settings import SessionSettings
    from loomkin.bus import Bus
    from loomkin.core.records import ControlAction, PauseMode
    from loomkin.core.scheduling import CapabilityStats
    from loomkin.core.state import State
    from loomkin.ids import AgentId, MessageId, SessionId
    from loomkin.llm.pricing import PriceTable
    from loomkin.runtime.clock import Clock
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.projections import Projection
    from loomkin.runtime.supervisor import Supervisor
    from loomkin.runtime.teams import TeamManager
    from loomkin.tasks import TaskService
    from loomkin.tools.permissions import PermissionPolicy

__all__ = ["SessionRuntime"]


class SessionRuntime:
    """The parts of one live session, composed (see the module docstring)."""

    def __init__(
        self,
        *,
        session_id: SessionId,
        project_root: Path,
        root_team_id: TeamId,
        settings: SessionSettings,
        log: EventLog,
        clock: Clock,
        state: State,
        bus: Bus,
        tasks: TaskService,
        stats: CapabilityStats,
        supervisor: Supervisor,
        timers: Supervisor,
        teams: TeamManager,
        policy: PermissionPolicy,
        prices: PriceTable,
        models: ModelFactory,
        toolsets: ToolsetFactory,
        mcp: McpManager | None = None,
        tool_runner: ToolRunner | None = None,
    ) -> None:
        self.session_id = session_id
        self.mcp = mcp or McpManager((), project_root=project_root, supervisor=timers, group="")
        """The session's MCP servers (started by the caller; their tools are in ``toolsets``)."""
        self.root_team_id = root_team_id
        self.settings = settings
        self._log = log
        self._clock = clock
        self._state = state
        self._supervisor = supervisor
        messages = MessageFactory(session_id=session_id)
        self.directory = AgentDirectory(
            session_id=session_id,
            root_team_id=root_team_id,
            state=state,
            tasks=tasks,
            stats=stats,
            coordination_roles=settings.coordination_roles,
        )
        self.router = MessageRouter(
            session_id=session_id, directory=self.directory, bus=bus, state=state, clock=clock
        )
        self.questions = QuestionBook(
            log=log,
            clock=clock,
            timers=timers,
            messages=messages,
            timeout_s=settings.question_timeout_s,
        )
        self.budgets = BudgetBook(limits=settings.budgets)
        self.decisions = DecisionLog()
        files = MemoryFileAccessLog()
        self.coordination = SessionCoordination(
            Context(
                session_id=session_id,
                log=log,
                clock=clock,
                timers=timers,
                tasks=tasks,
                state=state,
                roster=self.directory,
                messages=messages,
            ),
            project_root=project_root,
            settings=settings,
            files=files,
            judge=ModelJudge(models, resolve_role("reviewer", settings.custom_roles), prices),
            stats=stats,
        )
        self.permissions = PermissionDesk(supervisor=supervisor, group=session_id)
        self.teams = TeamOps(
            session_id=session_id,
            log=log,
            state=state,
            teams=teams,
            directory=self.directory,
            settings=settings,
            models=models,
            toolsets=toolsets,
        )
        self.ctx = AgentContext(
            tool_runner=tool_runner or LOCAL_TOOLS,
            session_id=session_id,
            project_root=project_root,
            root_team_id=root_team_id,
            settings=settings,
            log=log,
            clock=clock,
            state=state,
            tasks=tasks,
            policy=policy,
            permissions=self.permissions,
            budgets=self.budgets,
            prices=prices,
            file_access=files,
            messages=messages,
            directory=self.directory,
            teams=self.teams,
            topics=self.router,
            questions=self.questions,
            decisions=self.decisions,
            votes=self.coordination.votes,
            negotiations=self.coordination.negotiations,
            readiness=self.coordination.readiness,
            rendezvous=self.coordination.rendezvous,
            knowledge=self.coordination.knowledge,
            conflicts=self.coordination.conflicts,
            pre_write=self.coordination,
            scheduler_stats=stats,
            speculation=self.coordination.speculation,
        )
        self._factory = AgentFactory(
            ctx=self.ctx,
            directory=self.directory,
            activator=Activator(supervisor=supervisor, log=log, group=session_id),
            models=models,
            toolsets=toolsets,
        )
        self._grants = PolicyGrants(policy)
        self.coordination.speculation.settler.stop_agent = self._stop_speculating
        scaling = settings.autoscale
        if scaling.session_budget_usd is None and settings.budgets.session_usd is not None:
            scaling = dataclasses.replace(scaling, session_budget_usd=settings.budgets.session_usd)
        self.autoscaler = Autoscaler(
            self.coordination.ctx,
            scaling,
            self.teams,
            self.coordination.knowledge,
            may_talk=self._may_talk,
        )
        """Grows and shrinks the session's teams (``[autoscale]``); spawns go through
        ``teams`` (the placer port), so where an agent runs is decided there."""

    def _may_talk(self, a: TeamId, b: TeamId) -> bool:
        """Whether the comms policy lets teams ``a`` and ``b`` talk (capacity moves need it)."""
        try:
            self.ctx.check_comms(a, b)
        except PolicyRefused:
            return False
        return True

    def projections(self) -> list[tuple[str, Projection]]:
        """The session's projections, in the order every event is fed to them.

        Agents are built before anything routes to them; the directory folds an agent's
        events into its memory before the router, the questions or the coordination services
        look at it.
        """
        return [
            ("agents", self._factory),
            ("directory", self.directory),
            ("router", self.router),
            ("grants", self._grants),
            ("questions", self.questions),
            ("budgets", self.budgets),
            ("decisions", self.decisions),
            ("coordination", self.coordination),
            ("autoscale", self.autoscaler),
        ]

    def resume_interrupted(self) -> list[Agent]:
        """Re-activate agents that were working when the process stopped, or owe a control.

        The directory put the controls acknowledged before the stop back on their lanes when
        the replay caught up; an agent with a pause, resume or cancel waiting is woken to
        apply it (a paused agent only applies it: a pause keeps it paused, a resume lets it
        continue). Steering waits for the agent's next model call, as it does live.
        """
        woken = []
        for agent in self.directory.agents():
            status = agent.memory.status
            # An agent killed after reading its input but before its status changed is still
            # "idle", with the input in its transcript and no message left to redeliver.
            cut_short = status == "idle" and agent.memory.loop_open
            working = status in ("thinking", "executing_tool", "waiting_permission")
            if working or cut_short or agent.controls.pending():
                agent.wake()
                woken.append(agent)
        return woken

    # -- what the facade asks for -----------------------------------------------------------------

    async def post_user_message(self, text: str, *, to: str | None = None) -> MessageId:
        """Send the user's words to the Concierge (or to the agent named ``to``)."""
        return await post_user_message(self.ctx, self.directory, self.teams, text, to=to)

    def resolve_team(self, name_or_id: str) -> TeamId:
        """The id of a team of this session given its id or name."""
        return self._state.resolve_team(self.session_id, name_or_id).team_id

    def agent(self, ref: str) -> Agent:
        """An agent by id, ``name`` or ``team/name``.

        Raises:
            NotFound: no such agent (the message lists the agents there are).
            UserError: the name is ambiguous.
        """
        return self.directory.agent(ref)

    async def control(
        self,
        agent: Agent,
        action: ControlAction,
        *,
        mode: PauseMode = "asap",
        text: str = "",
        force: bool = False,
        requested_by: str = "user",
    ) -> str:
        """Journal a control request, then put it on the agent's control lane."""
        _check_control(agent, action, text, force)
        request_id = RequestId(new_id("ctl_"))
        requested_at = self._clock.monotonic()
        await self._log.append(
            ControlRequested(
                session_id=self.session_id,
                agent_id=agent.agent_id,
                request_id=request_id,
                action=action,
                mode=mode,
                text=text,
                force=force,
                requested_by=requested_by,
            )
        )
        agent.submit_control(
            ControlCommand(
                request_id=request_id,
                action=action,
                mode=mode,
                text=text,
                force=force,
                requested_at=requested_at,
            )
        )
        return request_id

    async def _stop_speculating(self, agent_id: AgentId) -> None:
        """Cancel an agent still working on a discarded speculative attempt."""
        agent = self.directory.get(agent_id)
        if agent is not None and agent.memory.status != "idle":
            await self.control(agent, "cancel", requested_by="speculation")

    async def wait_idle(self) -> None:
        """Return once none of this session's agents (or permission responders) runs."""
        await self._supervisor.wait_idle(self.session_id)

    def running(self) -> int:
        """How many of this session's activations run now."""
        return self._supervisor.running(self.session_id)


def _check_control(agent: Agent, action: ControlAction, text: str, force: bool) -> None:
    status = agent.memory.status
    if action == "steer" and not text.strip():
        raise UserError("steer needs the guidance text")
    if action == "resume" and status != "paused":
        raise UserError(f"agent {agent.name!r} is not paused (status: {status})")
    if force and action != "pause":
        raise UserError("only pause can be forced")

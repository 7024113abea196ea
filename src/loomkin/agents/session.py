"""One session's agents: spawning, routing, activation, controls, permissions and budgets.

How this works and why:

* Agents are created from events. :meth:`SessionRuntime.spawn_agent` appends
  ``AgentSpawned``; the log listener (:meth:`SessionRuntime.on_event`) builds the
  :class:`~loomkin.agents.agent.Agent` when it sees that event. A replay after a restart goes
  through the same listener, so live and restored agents are built the same way.
* Messages are delivered from the log, not beside it: a ``MessageSent`` event is published on
  the bus only once it is committed, so a message an agent reads is always in the log, and
  after a restart the messages an agent had not yet read are delivered again.
* Bootstrap is deferred to the first user message: then the Concierge and the Orienter are
  spawned, the user's words go to the Concierge, and the Orienter starts its own scan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from loomkin.agents.agent import Agent
from loomkin.agents.control import ControlCommand
from loomkin.agents.coordination import SessionCoordination
from loomkin.agents.memory import AgentMemory
from loomkin.agents.questions import QuestionBook
from loomkin.agents.roles import Role, resolve_role
from loomkin.agents.settings import Budgets, SessionSettings
from loomkin.bus import BusMessage, agent_topic, team_topic
from loomkin.core.events import (
    AgentCrashed,
    AgentEvent,
    AgentFailedPermanently,
    AgentRestarted,
    AgentSpawned,
    ControlRequested,
    DecisionLogged,
    Event,
    MessageSent,
    PermissionResolved,
    QuestionAnswered,
    QuestionAsked,
    QuestionExpired,
    QuestionForwarded,
    RecordedEvent,
    SessionBootstrapped,
    TaskAssigned,
    TaskStatusChanged,
    TopicSubscribed,
    TopicUnsubscribed,
    UserMessagePosted,
)
from loomkin.core.scheduling import AgentCandidate, CapabilityStats
from loomkin.errors import NotFound, PolicyRefused, UserError
from loomkin.ids import AgentId, MessageId, QuestionId, RequestId, SessionId, TeamId, new_id
from loomkin.tools.base import MemoryFileAccessLog

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.bus import Bus
    from loomkin.core.events import JSON
    from loomkin.core.records import ControlAction, PauseMode, PermissionDecision
    from loomkin.core.state import State
    from loomkin.llm.model import Model
    from loomkin.llm.pricing import PriceTable
    from loomkin.runtime.clock import Clock
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.supervisor import Supervisor
    from loomkin.runtime.teams import TeamManager
    from loomkin.tasks.service import TaskService
    from loomkin.tools.base import ToolSet
    from loomkin.tools.permissions import PermissionPolicy

__all__ = ["Budgets", "PermissionResponder", "SessionRuntime", "SessionSettings"]

logger = logging.getLogger(__name__)

PermissionResponder = Callable[[Agent, str], Awaitable["PermissionDecision | None"]]
"""Answers a permission prompt on behalf of the user (``--yes``, the demo); ``None`` = ask."""


ModelFactory = Callable[[Role, str], "Model"]
ToolsetFactory = Callable[[Role], "ToolSet[Agent]"]


class SessionRuntime:
    """The live side of one session: its agents and the services their tools use."""

    def __init__(
        self,
        *,
        session_id: SessionId,
        project_root: Path,
        root_team_id: TeamId,
        log: EventLog,
        state: State,
        bus: Bus,
        supervisor: Supervisor,
        timers: Supervisor,
        teams: TeamManager,
        tasks: TaskService,
        policy: PermissionPolicy,
        prices: PriceTable,
        clock: Clock,
        settings: SessionSettings,
        model_factory: ModelFactory,
        toolset_factory: ToolsetFactory,
    ) -> None:
        self.session_id = session_id
        self.project_root = project_root
        self.root_team_id = root_team_id
        self.log = log
        self.state = state
        self.bus = bus
        self.supervisor = supervisor
        self.timers = timers
        self.teams = teams
        self.tasks = tasks
        self.policy = policy
        self.prices = prices
        self.clock = clock
        self.settings = settings
        self.model_factory = model_factory
        self.toolset_factory = toolset_factory
        self.agents: dict[AgentId, Agent] = {}
        self._by_name: dict[tuple[TeamId, str], Agent] = {}
        self._topic_subs: dict[tuple[AgentId, str], Callable[[], None]] = {}
        self._team_sizes: dict[TeamId, int] = {}
        self.questions = QuestionBook()
        self.questions.on_asked = self._arm_question
        self.decisions: list[DecisionLogged] = []
        self.file_access = MemoryFileAccessLog()
        self.scheduler_stats = CapabilityStats()
        self.permission_responder: PermissionResponder | None = None
        self.coordination = SessionCoordination(self)
        """Conflict detector, rebalancer, votes and knowledge of this session."""
        self._unsubscribers: dict[AgentId, list[Callable[[], None]]] = {}
        self._bootstrapped = False
        self._replaying = False

    # -- events -----------------------------------------------------------------------------------

    def on_event(self, recorded: RecordedEvent) -> None:
        """Log listener: keep agents' memories current and deliver committed messages."""
        event = recorded.event
        if event.session_id != self.session_id:
            return
        self._fold(event)
        if isinstance(event, AgentEvent):
            agent = self.agents.get(event.agent_id)
            if agent is not None:
                agent.memory.apply(event)
        elif isinstance(event, TaskAssigned | TaskStatusChanged):
            self._route_task_event(event)
        self.coordination.on_event(event, live=not self._replaying)

    def _fold(self, event: Event) -> None:
        """The session's own reaction to one of its events."""
        match event:
            case AgentSpawned():
                self._build_agent(event)
            case SessionBootstrapped():
                self._bootstrapped = True
            case MessageSent():
                if not self._replaying:
                    self._deliver(event)
            case PermissionResolved(decision="allow_always", tool=tool, target=target):
                self.policy.grant_always(tool, target or "*")
            case DecisionLogged():
                self.decisions.append(event)
            case (
                TopicSubscribed(agent_id=aid, topic=topic)
                | TopicUnsubscribed(agent_id=aid, topic=topic)
            ):
                self._follow_topic(aid, topic, follow=isinstance(event, TopicSubscribed))
            case QuestionAsked() | QuestionForwarded() | QuestionAnswered() | QuestionExpired():
                self.questions.apply(event)
            case _:
                pass  # the agents' memories and the coordination services take the rest

    def _route_task_event(self, event: TaskAssigned | TaskStatusChanged) -> None:
        owner = (
            event.owner if isinstance(event, TaskAssigned) else self.tasks.owner_of(event.task_id)
        )
        agent = self.agents.get(AgentId(owner)) if owner else None
        if agent is not None:
            agent.memory.apply(event)
        for other in self.agents.values():  # a released task leaves its previous owner too
            if other is not agent and other.memory.task_id == event.task_id:
                other.memory.apply(event)

    def _build_agent(self, event: AgentSpawned) -> None:
        role = resolve_role(event.role, self.settings.custom_roles)
        memory = AgentMemory(agent_id=event.agent_id)
        memory.apply(event)
        team = self.state.team(event.team_id)
        agent = Agent(
            session=self,
            memory=memory,
            role=role,
            model=self.model_factory(role, event.name),
            tools=self.toolset_factory(role),
            system_prompt=role.system_prompt(
                agent_name=event.name, team_name=team.name, project=str(self.project_root)
            ),
        )
        self.agents[event.agent_id] = agent
        self._by_name[(event.team_id, event.name)] = agent
        self._team_sizes[event.team_id] = self._team_sizes.get(event.team_id, 0) + 1
        self._unsubscribers[event.agent_id] = [
            self.bus.subscribe(agent_topic(event.agent_id), agent.mailbox),
            self.bus.subscribe(team_topic(event.team_id), _TeamSubscriber(agent)),
        ]

    def topic_key(self, name: str) -> str:
        """The bus topic of the session-wide topic ``name`` (topics never cross sessions)."""
        return f"topic:{self.session_id}:{name}"

    def _follow_topic(self, agent_id: AgentId, name: str, *, follow: bool) -> None:
        agent = self.agents.get(agent_id)
        key = self.topic_key(name)
        leave = self._topic_subs.pop((agent_id, key), None)
        if leave is not None:
            leave()
        if follow and agent is not None:
            self._topic_subs[(agent_id, key)] = self.bus.subscribe(key, _TeamSubscriber(agent))

    def topics_of(self, agent_id: AgentId) -> list[str]:
        """Names of the topics ``agent_id`` follows."""
        prefix = self.topic_key("")
        return sorted(key.removeprefix(prefix) for aid, key in self._topic_subs if aid == agent_id)

    def _deliver(self, event: MessageSent) -> None:
        message = self._bus_message(event)
        if event.to_agent is not None:
            self.bus.publish(agent_topic(event.to_agent), message)
        elif event.to_team is not None:
            self.bus.publish(team_topic(event.to_team), message)
        elif event.topic is not None:
            self.bus.publish(event.topic, message)

    def _bus_message(self, event: MessageSent) -> BusMessage:
        data = event.data
        team = self.state.get_team(event.from_team) if event.from_team else None
        if team is not None:  # the recipient's model reads team names, not ids
            data = {**(data or {}), "from_team_name": team.name}
        return BusMessage(
            message_id=event.message_id,
            msg_type=event.msg_type,
            tier=event.tier,
            content=event.content,
            from_agent=event.from_agent,
            from_name=event.from_name,
            from_team=event.from_team,
            to_agent=event.to_agent,
            to_team=event.to_team,
            topic=event.topic,
            data=data,
            sent_at=self.clock.now(),
        )

    # -- replay -----------------------------------------------------------------------------------

    def replay(self, events: list[RecordedEvent]) -> None:
        """Rebuild agents and memories from the log (no message is delivered twice)."""
        self._replaying = True
        try:
            for recorded in events:
                self.on_event(recorded)
        finally:
            self._replaying = False
        self._redeliver_unread(events)

    def _redeliver_unread(self, events: list[RecordedEvent]) -> None:
        """Deliver again what each agent was sent but had not read when the process stopped.

        A direct message goes to its addressee; a team message to each member that was in
        the team when it was sent, had not read it, and did not send it.
        """
        joined: dict[AgentId, int] = {}
        for recorded in events:
            event = recorded.event
            if isinstance(event, AgentSpawned):
                joined[event.agent_id] = recorded.position
            if not isinstance(event, MessageSent):
                continue
            if event.to_agent is not None:
                recipients = [self.agents[event.to_agent]] if event.to_agent in self.agents else []
            elif event.to_team is not None:
                recipients = [
                    a
                    for a in self.agents.values()
                    if a.team_id == event.to_team
                    and a.agent_id != event.from_agent
                    and joined.get(a.agent_id, recorded.position) < recorded.position
                ]
            else:
                recipients = []
            for agent in recipients:
                if event.message_id not in agent.memory.read_messages:
                    agent.mailbox.deliver(self._bus_message(event))

    def resume_interrupted(self) -> list[Agent]:
        """Re-activate agents that were working when the process stopped."""
        woken = []
        for agent in self.agents.values():
            status = agent.memory.status
            # An agent killed after reading its input but before its status changed is still
            # "idle", with the input in its transcript and no message left to redeliver.
            cut_short = status == "idle" and agent.memory.loop_open
            if status in ("thinking", "executing_tool", "waiting_permission") or cut_short:
                self.activate(agent)
                woken.append(agent)
        return woken

    # -- agents -----------------------------------------------------------------------------------

    async def spawn_agent(
        self, team_id: TeamId, name: str, role: str, *, spawned_by: AgentId | None = None
    ) -> Agent:
        """Create an agent in ``team_id``; the name must be unique in the team."""
        if self.find_agent(team_id, name) is not None:
            raise PolicyRefused(f"team {team_id!r} already has an agent named {name!r}")
        if self._team_sizes.get(team_id, 0) >= self.settings.max_agents_per_team:
            raise PolicyRefused(
                f"team {team_id!r} is full ({self.settings.max_agents_per_team} agents; "
                "raise limits.max_agents_per_team in loomkin.toml)"
            )
        resolved = resolve_role(role, self.settings.custom_roles)
        # Build what the listener will build before anything is appended, so a bad role (an
        # unknown tool in loomkin.toml) is a clear error here, not an agent missing after its
        # AgentSpawned event is already in the log.
        self.toolset_factory(resolved)
        agent_id = AgentId(new_id("agent_"))
        await self.log.append(
            AgentSpawned(
                session_id=self.session_id,
                agent_id=agent_id,
                team_id=team_id,
                name=name,
                role=resolved.name,
                model=self.model_factory(resolved, name).name,
                spawned_by=spawned_by,
            )
        )
        return self.agents[agent_id]

    def find_agent(self, team_id: TeamId, name: str) -> Agent | None:
        """Return the agent called ``name`` in ``team_id``, if any."""
        return self._by_name.get((team_id, name))

    def agent(self, name: str, team_id: TeamId | None = None) -> Agent:
        """Return an agent by name (``team/name`` or a name unique in the session)."""
        if "/" in name and team_id is None:
            team_part, name = name.split("/", 1)
            team_id = self.resolve_team(team_part)
        matches = [
            a for a in self.agents.values() if a.name == name and team_id in (None, a.team_id)
        ]
        if not matches:
            raise NotFound(f"no agent named {name!r} in session {self.session_id!r}")
        if len(matches) > 1:
            teams = ", ".join(sorted(self.state.team(a.team_id).name for a in matches))
            raise UserError(f"agent name {name!r} is ambiguous; say team/name (teams: {teams})")
        return matches[0]

    def resolve_team(self, name_or_id: str) -> TeamId:
        """Return the id of a team of this session given its id or name."""
        for team in self.state.teams(self.session_id):
            if name_or_id in (team.team_id, team.name):
                return team.team_id
        raise NotFound(f"no team {name_or_id!r} in session {self.session_id!r}")

    def activate(self, agent: Agent) -> None:
        """Run the agent's activation under the supervisor (a no-op if it already runs)."""
        if self.supervisor.stopped:
            # Shutting down: a message committed while the log flushes stays in the mailbox,
            # unread, like any message left at a stop (not an error to log on every close).
            return
        key = f"agent:{agent.agent_id}"

        async def on_crash(_key: str, exc: BaseException, restarts: int) -> None:
            await self.log.append(
                AgentCrashed(
                    session_id=self.session_id,
                    agent_id=agent.agent_id,
                    error=f"{type(exc).__name__}: {exc}",
                    restarts_in_window=restarts,
                ),
                AgentRestarted(
                    session_id=self.session_id, agent_id=agent.agent_id, attempt=restarts
                ),
            )

        async def on_give_up(_key: str, exc: BaseException) -> None:
            task_id = agent.memory.task_id
            await self.log.append(
                AgentFailedPermanently(
                    session_id=self.session_id,
                    agent_id=agent.agent_id,
                    error=f"{type(exc).__name__}: {exc}",
                    released_task_id=task_id,
                )
            )
            await agent.set_status("crashed", "gave up after repeated crashes")
            if task_id is not None:
                await self.tasks.release(task_id, reason=f"agent {agent.name!r} failed permanently")

        self.supervisor.run(key, agent.activation, on_crash=on_crash, on_give_up=on_give_up)

    # -- user messages and bootstrap ----------------------------------------------------------

    async def post_user_message(self, text: str, *, to: str | None = None) -> MessageId:
        """Send the user's words to the Concierge (or to the agent named ``to``)."""
        if not text.strip():
            raise UserError("the message is empty")
        if not self._bootstrapped:
            await self.bootstrap()
        target = self.agent(to) if to else self.agent("concierge", self.root_team_id)
        message_id = MessageId(new_id("msg_"))
        await self.log.append(
            UserMessagePosted(
                session_id=self.session_id,
                message_id=message_id,
                text=text,
                to_agent=target.agent_id,
            ),
            self.message_event(
                msg_type="user_message", content=text, to_agent=target.agent_id, from_name="user"
            ),
        )
        return message_id

    async def bootstrap(self) -> None:
        """Spawn the Concierge and the Orienter (unless present); start the Orienter's scan."""
        root = self.root_team_id
        concierge = self.find_agent(root, "concierge") or await self.spawn_agent(
            root, "concierge", "concierge"
        )
        orienter = None
        if self.settings.bootstrap_orienter:
            orienter = self.find_agent(root, "orienter") or await self.spawn_agent(
                root, "orienter", "orienter"
            )
        await self.log.append(
            SessionBootstrapped(
                session_id=self.session_id,
                concierge_id=concierge.agent_id,
                orienter_id=orienter.agent_id if orienter else None,
            )
        )
        if orienter is not None:
            await self.log.append(
                self.message_event(
                    msg_type="orient",
                    content=(
                        "The session has started. Scan the project and send your brief to the "
                        "concierge."
                    ),
                    to_agent=orienter.agent_id,
                )
            )

    def message_event(
        self,
        *,
        msg_type: str,
        content: str,
        to_agent: AgentId | None = None,
        to_team: TeamId | None = None,
        topic: str | None = None,
        sender: Agent | None = None,
        from_name: str = "system",
        data: dict[str, JSON] | None = None,
    ) -> MessageSent:
        """Build a ``MessageSent`` event (delivered once committed); see ``Context.message``."""
        return self.coordination.ctx.message(
            msg_type,
            content,
            to_agent=to_agent,
            to_team=to_team,
            topic=topic,
            from_name=from_name,
            sender=sender,
            data=data,
        )

    # -- controls ---------------------------------------------------------------------------------

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
        """Journal a control request and put it on the agent's control lane."""
        _check_control(agent, action, text, force)
        request_id = RequestId(new_id("ctl_"))
        requested_at = self.clock.monotonic()
        await self.log.append(
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
        command = ControlCommand(
            request_id=request_id,
            action=action,
            mode=mode,
            text=text,
            force=force,
            requested_at=requested_at,
        )
        agent.submit_control(command)
        return request_id

    async def answer_permission(self, request_id: str, decision: PermissionDecision) -> None:
        """Answer a pending permission prompt by its id."""
        for agent in self.agents.values():
            pending = agent.memory.pending_permission
            if pending is not None and pending.request_id == request_id:
                agent.answer_permission(request_id, decision)
                return
        raise NotFound(f"no pending permission request {request_id!r}")

    def permission_asked(self, agent: Agent, request_id: str) -> None:
        """Let the session's responder (``--yes``, the demo) answer the prompt, if set."""
        responder = self.permission_responder
        if responder is None:
            return

        async def respond() -> None:
            decision = await responder(agent, request_id)
            if decision is not None:
                agent.answer_permission(request_id, decision, by="auto")

        self.supervisor.run(f"permission:{request_id}", respond)

    # -- teams, comms, questions ------------------------------------------------------------------

    def candidates(self, team_id: TeamId) -> list[AgentCandidate]:
        """Agents of ``team_id`` the scheduler may give tasks to."""
        return [
            AgentCandidate(
                agent_id=a.agent_id,
                name=a.name,
                role=a.role.name,
                idle=a.memory.status == "idle" and a.memory.task_id is None,
            )
            for a in self.agents.values()
            if a.team_id == team_id and a.role.name not in self.settings.coordination_roles
        ]

    def check_comms(self, from_team: TeamId, to_team: TeamId) -> None:
        """Refuse a message between teams the communication policy keeps apart."""
        if from_team == to_team or self.settings.comms_policy == "open":
            return
        state = self.state
        # Tree neighbours in O(1), whatever the number of teams: compare the two parents.
        source, target = state.team(from_team), state.team(to_team)
        parent = source.parent_team_id
        if target.status == "active" and (
            to_team == parent
            or target.parent_team_id == from_team
            or (parent is not None and target.parent_team_id == parent)
        ):
            return
        names = (state.team(from_team).name, state.team(to_team).name)
        if names in self.settings.comms_allow or names[::-1] in self.settings.comms_allow:
            return
        raise PolicyRefused(
            f"team {names[0]!r} may not message team {names[1]!r}: the communication policy "
            "allows the team's parent, children and siblings (add the pair to [comms] allow "
            "in loomkin.toml)"
        )

    async def dissolve_team(self, team_id: TeamId, *, reason: str, by: AgentId | None) -> None:
        """Dissolve ``team_id`` and its sub-teams; their agents stop taking work."""
        doomed = {t.team_id for t in self.state.subtree(team_id)}
        await self.teams.dissolve(team_id, reason=reason, by=by)
        for agent in list(self.agents.values()):
            if agent.team_id in doomed:
                await agent.set_status("done", f"team dissolved: {reason}")
                for unsubscribe in self._unsubscribers.pop(agent.agent_id, []):
                    unsubscribe()

    def _arm_question(self, asked: QuestionAsked) -> None:
        delay = max(0.0, asked.deadline - self.clock.now())

        async def expire() -> None:
            await asyncio.sleep(delay)
            if not self.questions.is_open(asked.question_id):
                return
            await self.log.append(
                QuestionExpired(
                    session_id=self.session_id, question_id=QuestionId(asked.question_id)
                ),
                self.message_event(
                    msg_type="answer",
                    content=(
                        f"No answer to your question {asked.question!r} within "
                        f"{self.settings.question_timeout_s:.0f} s; it has expired. Proceed "
                        "without it or ask someone else."
                    ),
                    to_agent=asked.asker,
                ),
            )

        self.timers.run(f"question:{asked.question_id}", expire)


class _TeamSubscriber:
    """An agent's subscription to its team's (or a topic's) messages, minus its own sends."""

    __slots__ = ("_agent",)

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def deliver(self, message: BusMessage) -> None:
        if message.from_agent != self._agent.agent_id:
            self._agent.mailbox.deliver(message)


def _check_control(agent: Agent, action: ControlAction, text: str, force: bool) -> None:
    status = agent.memory.status
    if action == "steer" and not text.strip():
        raise UserError("steer needs the guidance text")
    if action == "resume" and status != "paused":
        raise UserError(f"agent {agent.name!r} is not paused (status: {status})")
    if force and action != "pause":
        raise UserError("only pause can be forced")

"""The session handle: what the CLI, the web app and embedding code use to drive a session."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events import (
    ControlApplied,
    ControlRequested,
    ModelCallCompleted,
    TaskStatusChanged,
)
from loomkin.errors import UserError
from loomkin.ids import RequestId, new_id

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.session import Budgets, PermissionResponder, SessionRuntime
    from loomkin.core.events import JSON
    from loomkin.core.records import PauseMode, PermissionDecision
    from loomkin.runtime.eventlog import Subscription
    from loomkin.service.runtime import Loomkin

__all__ = ["AgentInfo", "Session", "Summary"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentInfo:
    """One agent as the UI and the CLI show it."""

    agent_id: str
    name: str
    role: str
    team_id: str
    team_name: str
    status: str
    task_id: str | None
    current_tool: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """What a session produced: files, tasks, decisions, tokens and cost."""

    files_changed: tuple[str, ...]
    tasks: dict[str, int]
    """Task count per status."""
    decisions: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int
    replies: tuple[str, ...] = field(default=())


class Session:
    """A live session: send messages, watch events, steer agents, answer permission prompts."""

    def __init__(self, loomkin: Loomkin, runtime: SessionRuntime) -> None:
        self.loomkin = loomkin
        self.runtime = runtime

    @property
    def session_id(self) -> str:
        return self.runtime.session_id

    @property
    def project_root(self) -> str:
        return str(self.runtime.project_root)

    # -- talking --------------------------------------------------------------------------------

    async def send(self, text: str, *, to: str | None = None) -> str:
        """Send the user's message (to the Concierge unless ``to`` names an agent)."""
        return await self.runtime.post_user_message(text, to=to)

    def events(self, *, after: int | None = 0) -> Subscription:
        """Subscribe to this session's events (``after=None``: live only)."""
        return self.loomkin.log.subscribe(after=after, session_id=self.session_id)

    async def wait_idle(self) -> None:
        """Wait until every agent is idle (or paused, or waiting for the user)."""
        await self.loomkin.wait_idle()

    def set_permission_responder(self, responder: PermissionResponder | None) -> None:
        """Answer permission prompts automatically (``--yes``, the demo); ``None`` to ask."""
        self.runtime.permission_responder = responder

    async def answer_permission(self, request_id: str, decision: PermissionDecision) -> None:
        """Answer a pending permission prompt: ``allow_once``, ``allow_always`` or ``deny``."""
        await self.runtime.answer_permission(request_id, decision)

    def pending_permissions(self) -> list[dict[str, str]]:
        """Permission prompts waiting for an answer."""
        pending = []
        for agent in self.runtime.agents.values():
            p = agent.memory.pending_permission
            if p is not None:
                pending.append(
                    {
                        "request_id": p.request_id,
                        "agent": agent.name,
                        "tool": p.tool,
                        "target": p.target,
                    }
                )
        return pending

    def set_budgets(self, budgets: Budgets) -> None:
        """Change the session's budgets (agents paused on a budget can then be resumed)."""
        self.runtime.settings = dataclasses.replace(self.runtime.settings, budgets=budgets)

    # -- teams and agents -------------------------------------------------------------------------

    async def create_team(self, name: str, *, parent: str | None = None, purpose: str = "") -> str:
        """Create a team under ``parent`` (a team name or id; default: the root team)."""
        runtime = self.runtime
        parent_id = runtime.resolve_team(parent) if parent else runtime.root_team_id
        return await runtime.teams.create_team(
            runtime.session_id, name, parent_team_id=parent_id, purpose=purpose
        )

    async def spawn_agent(self, name: str, role: str, *, team: str | None = None) -> AgentInfo:
        """Add an agent with ``role`` (a role name or a description) to ``team`` (default: root)."""
        runtime = self.runtime
        team_id = runtime.resolve_team(team) if team else runtime.root_team_id
        agent = await runtime.spawn_agent(team_id, name, role)
        return next(info for info in self.agents() if info.agent_id == agent.agent_id)

    # -- controls -------------------------------------------------------------------------------

    def agent(self, name: str) -> Agent:
        """Return an agent by name (``team/name`` when names repeat across teams)."""
        return self.runtime.agent(name)

    async def pause(self, name: str, *, mode: PauseMode = "asap", force: bool = False) -> str:
        """Pause an agent at its next checkpoint (``asap``) or step boundary (``at_boundary``).

        ``force`` also cancels a permission prompt the agent is waiting on; without it a pause
        requested during a prompt takes effect once the prompt is answered.
        """
        return await self.runtime.control(self.agent(name), "pause", mode=mode, force=force)

    async def resume(self, name: str) -> str:
        """Resume a paused agent from its checkpoint."""
        return await self.runtime.control(self.agent(name), "resume")

    async def steer(self, name: str, text: str, *, mode: PauseMode = "asap") -> str:
        """Give an agent guidance that lands in its very next model call.

        ``asap`` cuts an answer that is streaming short (keeping what streamed) and asks the
        model again at once with the guidance; ``at_boundary`` lets the answer finish first.
        """
        return await self.runtime.control(self.agent(name), "steer", text=text, mode=mode)

    async def cancel(self, name: str) -> str:
        """Cancel an agent's current task (its partial result is kept); the agent goes idle."""
        return await self.runtime.control(self.agent(name), "cancel")

    async def inspect(self, name: str) -> dict[str, JSON]:
        """Return a snapshot of the agent: messages, step, tool, task, iteration, usage."""
        agent = self.agent(name)
        snapshot = agent.snapshot()
        request_id = RequestId(new_id("ctl_"))
        await self.runtime.log.append(
            ControlRequested(
                session_id=self.runtime.session_id,
                agent_id=agent.agent_id,
                request_id=request_id,
                action="inspect",
            ),
            ControlApplied(
                session_id=self.runtime.session_id,
                agent_id=agent.agent_id,
                request_id=request_id,
                action="inspect",
                checkpoint="immediate",
                latency_ms=0.0,
                snapshot={k: v for k, v in snapshot.items() if k != "messages"},
            ),
        )
        return snapshot

    # -- views ----------------------------------------------------------------------------------

    def agents(self) -> list[AgentInfo]:
        """Every agent of the session, in spawn order."""
        infos = []
        for agent in self.runtime.agents.values():
            m = agent.memory
            team = self.loomkin.state.get_team(m.team_id)
            infos.append(
                AgentInfo(
                    agent_id=m.agent_id,
                    name=m.name,
                    role=m.role,
                    team_id=m.team_id,
                    team_name=team.name if team else "",
                    status=m.status,
                    task_id=m.task_id,
                    current_tool=m.current_tool,
                    input_tokens=m.input_tokens,
                    output_tokens=m.output_tokens,
                    cost_usd=m.cost_usd,
                )
            )
        return infos

    async def summary(self) -> Summary:
        """Files changed, tasks by status, decisions, tokens and cost of the session so far."""
        files: dict[str, None] = {}
        tasks: dict[str, int] = {}
        calls = 0
        for view in self.loomkin.board.tasks():
            if view.session_id != self.session_id:
                continue
            tasks[view.status] = tasks.get(view.status, 0) + 1
            if view.handoff is not None:
                files.update(dict.fromkeys(view.handoff.files_changed))
        for recorded in await self.loomkin.log.read(session_id=self.session_id):
            event = recorded.event
            if isinstance(event, ModelCallCompleted):
                calls += 1
            elif isinstance(event, TaskStatusChanged) and event.status == "completed":
                files.update(dict.fromkeys(event.files_changed))
        agents = self.runtime.agents.values()
        return Summary(
            files_changed=tuple(files),
            tasks=tasks,
            decisions=tuple(d.title for d in self.runtime.decisions if d.node_type == "decision"),
            input_tokens=sum(a.memory.input_tokens for a in agents),
            output_tokens=sum(a.memory.output_tokens for a in agents),
            cost_usd=sum(a.memory.cost_usd for a in agents),
            model_calls=calls,
        )

    def require_agent(self, name: str) -> Agent:
        """Like :meth:`agent` but raises ``UserError`` with the known names."""
        try:
            return self.agent(name)
        except UserError:
            names = ", ".join(sorted(a.name for a in self.runtime.agents.values()))
            raise UserError(f"no agent named {name!r}; agents: {names or 'none yet'}") from None

"""The agent actor: a mailbox, a control lane, a memory, and a loop that runs only when needed.

An idle agent owns no asyncio task: it is a few objects in a registry. A message arriving in
its mailbox (a task assignment, a peer message, the user's words) activates it: the session's
supervisor runs :meth:`Agent.activation`, which works until nothing is left and returns. A
crash is reported to the supervisor, which restarts the activation from the journaled state.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Literal

from loomkin.agents.budgets import Breach, budget_breach, budget_notice
from loomkin.agents.control import Checkpoint, ControlCommand, ControlLane
from loomkin.agents.loop import LoopOutcome, run_loop, tool_result
from loomkin.agents.notices import render_message
from loomkin.core.chat import AssistantMessage, ChatMessage, ToolCall, UserMessage, message_to_json
from loomkin.core.events import (
    AgentStatusChanged,
    AssistantReplied,
    BudgetExceeded,
    ControlApplied,
    Event,
    LoopFinished,
    PermissionRequested,
    PermissionResolved,
    ToolCallCompleted,
    ToolCallStarted,
    TranscriptAppended,
)
from loomkin.errors import LoomkinError, ToolError, UserError
from loomkin.ids import AgentId, CallId, RequestId, SessionId, TeamId, new_id
from loomkin.runtime.mailbox import Mailbox
from loomkin.tools.base import ToolContext

if TYPE_CHECKING:
    from pydantic import BaseModel

    from loomkin.agents.memory import AgentMemory
    from loomkin.agents.roles import Role
    from loomkin.agents.session import SessionRuntime
    from loomkin.bus import BusMessage
    from loomkin.core.events import JSON
    from loomkin.core.records import AgentStatus, PermissionDecision
    from loomkin.llm.model import Model
    from loomkin.llm.pricing import PriceTable
    from loomkin.runtime.clock import Clock
    from loomkin.tools.base import FileAccessLog, Tool, ToolSet
    from loomkin.tools.builtin import ShellPolicy

__all__ = ["Agent"]

logger = logging.getLogger(__name__)

PermissionAnswer = Literal["allow_once", "allow_always", "deny", "force_pause"]


class Agent:
    """One agent of a session: identity, memory, mailbox, control lane and loop."""

    def __init__(
        self,
        *,
        session: SessionRuntime,
        memory: AgentMemory,
        role: Role,
        model: Model,
        tools: ToolSet[Agent],
        system_prompt: str,
    ) -> None:
        self.session = session
        self.memory = memory
        self.role = role
        self.model = model
        self.tools = tools
        self.system_prompt = system_prompt
        self.controls = ControlLane()
        self.mailbox: Mailbox[BusMessage, ControlCommand] = Mailbox(on_arrival=self.wake)
        self._permission: tuple[str, asyncio.Future[tuple[PermissionAnswer, str]]] | None = None
        self._nudged_for: str | None = None
        self._deferred: list[BusMessage] = []
        self._serving_user = False

    # -- identity and shortcuts ---------------------------------------------------------------

    @property
    def agent_id(self) -> AgentId:
        return AgentId(self.memory.agent_id)

    @property
    def name(self) -> str:
        return self.memory.name

    @property
    def team_id(self) -> TeamId:
        return TeamId(self.memory.team_id)

    @property
    def session_id(self) -> SessionId:
        return self.session.session_id

    @property
    def clock(self) -> Clock:
        return self.session.clock

    @property
    def prices(self) -> PriceTable:
        return self.session.prices

    @property
    def file_access(self) -> FileAccessLog:
        """Which files each agent read (the file tools' stale-read warnings use it)."""
        return self.session.file_access

    @property
    def shell_policy(self) -> ShellPolicy:
        """The session's shell allow/deny lists and limits."""
        return self.session.settings.shell_policy

    @property
    def max_iterations(self) -> int:
        return self.session.settings.max_iterations

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} ({self.role.name}) {self.memory.status}>"

    # -- journaling ---------------------------------------------------------------------------

    async def emit(self, *events: Event) -> None:
        """Append events to the log (the memory is updated by the log listener)."""
        await self.session.log.append(*events)

    async def set_status(self, status: AgentStatus, reason: str = "") -> None:
        """Record a status change (nothing is written if the status is unchanged)."""
        previous = self.memory.status
        if previous == status:
            return
        await self.emit(
            AgentStatusChanged(
                session_id=self.session_id,
                agent_id=self.agent_id,
                status=status,
                previous=previous,
                reason=reason,
            )
        )

    async def append_transcript(self, message: ChatMessage, *with_events: Event) -> None:
        """Append ``message`` to the transcript, atomically with ``with_events``."""
        await self.emit(*with_events, self._transcript_event(message))

    def _transcript_event(
        self, message: ChatMessage, *, message_id: str | None = None
    ) -> TranscriptAppended:
        data = message_to_json(message)
        if message_id is not None:
            data["message_id"] = message_id  # marks the bus message as read (see memory)
        return TranscriptAppended(session_id=self.session_id, agent_id=self.agent_id, message=data)

    async def record_tool_result(
        self,
        call: ToolCall,
        text: str,
        *,
        outcome: Literal["ok", "error", "skipped", "interrupted", "denied"],
        is_error: bool,
        duration_ms: float = 0.0,
    ) -> None:
        """Journal a tool call's result and add it to the transcript, in one batch."""
        completed = ToolCallCompleted(
            session_id=self.session_id,
            agent_id=self.agent_id,
            call_id=CallId(call.call_id),
            tool=call.name,
            result=text,
            is_error=is_error,
            duration_ms=duration_ms,
            outcome=outcome,
        )
        await self.append_transcript(tool_result(call, text, is_error=is_error), completed)

    # -- activation -----------------------------------------------------------------------------

    def wake(self) -> None:
        """Start working if there is something to do (called when a message arrives)."""
        if self.memory.status in ("paused", "crashed") and not self.poll_controls():
            return
        self.session.activate(self)

    def has_work(self) -> bool:
        """True when the transcript, the mailbox or a task waits for this agent."""
        if self.memory.unanswered_calls() or self.has_input():
            return True
        transcript = self.memory.transcript
        if not transcript:
            return False
        last = transcript[-1]
        return not isinstance(last, AssistantMessage) or last.interrupted

    async def activation(self) -> None:
        """Work until there is nothing left, the agent pauses, or it is cancelled."""
        while True:
            if await self._apply_idle_controls():
                if self._arrived_meanwhile():
                    continue
                return
            if self.memory.status == "paused":
                return
            if not self.has_work():
                await self.set_status("idle")
                if self._arrived_meanwhile():
                    continue
                return
            outcome = await run_loop(self)
            await self._finish_loop(outcome)
            # Go round again so that controls which arrived while the loop was finishing (a
            # resume right after a pause) are applied: the wake-up they caused was a no-op
            # because this activation was still running. After a provider failure or a cancel
            # the transcript may still end with input, so has_work() stays true: only new
            # messages or controls justify another round (else a failing provider would be
            # called forever, or the cancelled work carried on).
            if outcome.outcome in ("error", "cancelled") and not (
                len(self.mailbox) > 0 or self.poll_controls()
            ):
                return

    def _arrived_meanwhile(self) -> bool:
        """True when a control (or, unless paused, a message) arrived as the activation ended.

        Its wake-up was a no-op, because this activation was still running.
        """
        if self.poll_controls():
            return True
        return self.memory.status != "paused" and len(self.mailbox) > 0

    async def _apply_idle_controls(self) -> bool:
        """Apply controls that arrive while no loop runs; True when the agent must stop."""
        self._take_control_commands()
        resume = self.controls.take_resume()
        if resume is not None:
            await self._control_applied(resume, "idle")
            if self.memory.status == "paused":
                await self.set_status("thinking" if self.has_work() else "idle", "resumed")
        directive = self.controls.at("idle") if self.controls.pending() else None
        if directive is None:
            return False
        if directive.action == "pause":
            await self.enter_paused(directive.command, "idle", reason=directive.reason)
        else:
            await self.apply_cancel(directive.command, "idle")
        return True

    def _take_control_commands(self) -> None:
        while (command := self.mailbox.take_control()) is not None:
            self.controls.add(command)

    def poll_controls(self) -> bool:
        """Move control commands waiting in the mailbox onto the lane; True if one is pending."""
        self._take_control_commands()
        return self.controls.pending()

    async def _finish_loop(self, outcome: LoopOutcome) -> None:
        task_id = self.memory.task_id
        await self.emit(
            LoopFinished(
                session_id=self.session_id,
                agent_id=self.agent_id,
                outcome=outcome.outcome,
                text=outcome.text,
                iterations=self.memory.iteration,
                task_id=task_id,
            )
        )
        if outcome.outcome in ("paused", "budget", "cancelled"):
            return
        if task_id is not None:
            await self.session.tasks.settle_after_loop(self, task_id, outcome.outcome, outcome.text)
        to_user = self._serving_user or self.role.name == "concierge"
        if to_user and outcome.outcome == "final" and outcome.text.strip():
            await self.emit(
                AssistantReplied(
                    session_id=self.session_id,
                    agent_id=self.agent_id,
                    agent_name=self.name,
                    text=outcome.text,
                )
            )
        self._serving_user = False

    # -- messages and steering ----------------------------------------------------------------

    async def ingest_messages(self) -> None:
        """Move waiting messages into the transcript as readable text (one batch)."""
        self._take_control_commands()
        events: list[Event] = []
        waiting = self._take_deferred()
        for message in [*waiting, *self.mailbox.drain()]:
            events.extend(await self._ingest_one(message))
        if events:
            await self.emit(*events)

    def _busy_with_another(self, message: BusMessage) -> bool:
        """True when ``message`` assigns a task while another one is still in progress."""
        current = self.memory.task_id
        assigned = (message.data or {}).get("task_id")
        return current is not None and assigned != current and self.session.tasks.is_open(current)

    def has_input(self) -> bool:
        """True when messages wait, or a task put aside can start now."""
        return len(self.mailbox) > 0 or self._deferred_ready()

    def _deferred_ready(self) -> bool:
        current = self.memory.task_id
        return bool(self._deferred) and (current is None or not self.session.tasks.is_open(current))

    def _take_deferred(self) -> list[BusMessage]:
        """Task assignments put aside while another task ran, once that task is over."""
        if not self._deferred_ready():
            return []
        deferred, self._deferred = self._deferred, []
        return deferred

    async def _ingest_one(self, message: BusMessage) -> list[Event]:
        if message.msg_type == "user_message":
            self._serving_user = True
        if message.msg_type == "task_assigned":
            if self._busy_with_another(message):
                self._deferred.append(message)  # one task at a time: start it after this one
                return []
            brief = await self.session.tasks.start_for(self, message)
            if brief is None:
                return []
            return [
                self._transcript_event(
                    UserMessage(source="system", text=brief), message_id=message.message_id
                )
            ]
        if message.msg_type == "abort" and self.memory.task_id is not None:
            self.controls.add(
                ControlCommand(
                    request_id=RequestId(new_id("ctl_")),
                    action="cancel",
                    requested_at=self.clock.monotonic(),
                )
            )
        source: Literal["user", "peer", "system"] = (
            "user"
            if message.msg_type == "user_message"
            else ("peer" if message.from_agent else "system")
        )
        text = render_message(message)
        return [
            self._transcript_event(
                UserMessage(source=source, text=text), message_id=message.message_id
            )
        ]

    async def apply_steers(self) -> None:
        """Put pending steering texts into the transcript, just before the next model call."""
        self._take_control_commands()
        steers = self.controls.take_steers()
        if not steers:
            return
        for command in steers:
            await self.append_transcript(
                UserMessage(source="guidance", text=f"[User guidance]: {command.text}")
            )
            await self._control_applied(command, "before_model")

    # -- controls -------------------------------------------------------------------------------

    def submit_control(self, command: ControlCommand) -> None:
        """Put a control command on the lane (after it was journaled) and wake the agent."""
        if command.action == "pause" and command.force and self._permission is not None:
            _, future = self._permission
            if not future.done():
                future.set_result(("force_pause", "force_pause"))
        self.mailbox.put_control(command)

    async def _control_applied(self, command: ControlCommand, where: Checkpoint) -> None:
        latency_ms = max(0.0, (self.clock.monotonic() - command.requested_at) * 1000.0)
        await self.emit(
            ControlApplied(
                session_id=self.session_id,
                agent_id=self.agent_id,
                request_id=RequestId(command.request_id),
                action=command.action,
                checkpoint=where,
                latency_ms=latency_ms,
            )
        )

    async def enter_paused(
        self, command: ControlCommand, where: Checkpoint, *, reason: str
    ) -> None:
        """Record the pause and the status change (the loop then returns)."""
        await self._control_applied(command, where)
        await self.set_status("paused", reason)

    async def apply_cancel(self, command: ControlCommand, where: Checkpoint) -> None:
        """End the current task as cancelled, keeping its partial result; go idle."""
        await self._control_applied(command, where)
        task_id = self.memory.task_id
        if task_id is not None:
            await self.session.tasks.cancel_with_partial(self, task_id, self._partial_result())
        await self.set_status("idle", "cancelled by user")

    def _partial_result(self) -> str:
        for message in reversed(self.memory.transcript):
            if isinstance(message, AssistantMessage) and message.text.strip():
                return message.text
        return ""

    # -- budgets --------------------------------------------------------------------------------

    def budget_breach(self) -> Breach | None:
        """The budget the next model call would break, if any."""
        return budget_breach(self.session, self)

    async def enter_budget_pause(self, breach: Breach) -> None:
        """Pause for a budget breach and ask the lead or the user (finished work is kept)."""
        await self.emit(
            BudgetExceeded(
                session_id=self.session_id,
                agent_id=self.agent_id,
                scope=breach.scope,
                limit_usd=breach.limit_usd,
                spent_usd=breach.spent_usd,
                limit_tokens=breach.limit_tokens,
                spent_tokens=breach.spent_tokens,
            ),
            *budget_notice(self.session, self, breach.description),
        )
        await self.set_status("paused", f"budget exceeded: {breach.description}")

    async def needs_completion_nudge(self) -> bool:
        """True (once per task) when the agent answered without completing its open task."""
        task_id = self.memory.task_id
        if task_id is None or not self.session.tasks.is_open(task_id):
            return False
        if self.session.tasks.task(task_id).status == "blocked":
            return False  # it said why it waits (what the nudge asks); a message wakes it
        if self._nudged_for == task_id:
            return False
        self._nudged_for = task_id
        return True

    # -- tools ------------------------------------------------------------------------------------

    def tool_context(self, call: ToolCall) -> ToolContext:
        """Return the context a tool call runs in."""
        return ToolContext(
            project_root=self.session.project_root,
            agent_id=self.agent_id,
            agent_name=self.name,
            team_id=self.team_id,
            session_id=self.session_id,
            call_id=CallId(call.call_id),
        )

    async def execute_tool(self, call: ToolCall) -> None:
        """Validate, authorise, run and journal one tool call; errors become readable results."""
        ctx = self.tool_context(call)
        try:
            tool = self.tools.get(call.name)
            args = tool.parse_args(call.arguments)
            target = tool.target(args, ctx)
        except (ToolError, UserError) as exc:
            await self.record_tool_result(call, f"Error: {exc}", outcome="error", is_error=True)
            return
        allowed = await self._authorise(call, tool, args, target)
        if allowed is not True:
            return
        arguments = args.model_dump(mode="json")
        refusal = await self.session.coordination.before_tool(self, tool.name, arguments, target)
        if refusal is not None:  # the conflict detector stopped the write before it landed
            await self.record_tool_result(
                call, f"Error: {refusal}", outcome="denied", is_error=True
            )
            return
        await self._run_tool(call, tool, args, ctx, target)

    async def _authorise(
        self, call: ToolCall, tool: Tool[Agent], args: BaseModel, target: str
    ) -> bool:
        decision = self.session.policy.decide(tool.name, tool.category, target)
        if decision == "allow":
            return True
        if decision == "deny":
            what = target or "this call"
            text = f"Error: {tool.name} is denied by the permission policy for {what}."
            await self.record_tool_result(call, text, outcome="denied", is_error=True)
            return False
        answer = await self.ask_permission(call, tool, args, target)
        if answer == "force_pause":
            await self.record_tool_result(
                call,
                "skipped: paused by user (the permission prompt was cancelled)",
                outcome="skipped",
                is_error=True,
            )
            return False
        if answer == "deny":
            text = f"Error: permission denied for {tool.name} on {target or 'this call'}."
            await self.record_tool_result(call, text, outcome="denied", is_error=True)
            return False
        return True

    async def ask_permission(
        self, call: ToolCall, tool: Tool[Agent], args: BaseModel, target: str
    ) -> PermissionAnswer:
        """Ask the user (or the session's responder) whether this call may run."""
        pending = self.memory.pending_permission
        asked_before = pending is not None and pending.call_id == call.call_id
        # Asked before a restart: ask again under the same request id.
        request_id = pending.request_id if pending is not None and asked_before else new_id("perm_")
        # The answer can arrive as soon as the request is in the log (the UI reads the log),
        # so the future exists before the request is appended.
        future: asyncio.Future[tuple[PermissionAnswer, str]]
        future = asyncio.get_running_loop().create_future()
        self._permission = (request_id, future)
        try:
            if not asked_before:
                await self.emit(
                    PermissionRequested(
                        session_id=self.session_id,
                        agent_id=self.agent_id,
                        request_id=RequestId(request_id),
                        call_id=CallId(call.call_id),
                        tool=tool.name,
                        category=tool.category,
                        arguments=args.model_dump(mode="json"),
                        target=target,
                    )
                )
            await self.set_status("waiting_permission", f"{tool.name} {target}".strip())
            self.session.permission_asked(self, request_id)
            answer, decided_by = await future
        finally:
            self._permission = None
        decision: PermissionDecision = "deny" if answer == "force_pause" else answer
        await self.emit(
            PermissionResolved(
                session_id=self.session_id,
                agent_id=self.agent_id,
                request_id=RequestId(request_id),
                decision=decision,
                tool=tool.name,
                target=target,
                decided_by=decided_by,
            )
        )
        return answer

    def answer_permission(
        self, request_id: str, decision: PermissionDecision, *, by: str = "user"
    ) -> None:
        """Answer the pending permission prompt ``request_id`` (``by`` is recorded)."""
        if self._permission is None or self._permission[0] != request_id:
            raise UserError(f"agent {self.name!r} has no pending permission request {request_id!r}")
        future = self._permission[1]
        if not future.done():
            future.set_result((decision, by))

    async def _run_tool(
        self, call: ToolCall, tool: Tool[Agent], args: BaseModel, ctx: ToolContext, target: str
    ) -> None:
        await self.emit(
            ToolCallStarted(
                session_id=self.session_id,
                agent_id=self.agent_id,
                call_id=CallId(call.call_id),
                tool=tool.name,
                arguments=args.model_dump(mode="json"),
                target=target,
            )
        )
        await self.set_status("executing_tool", tool.name)
        started = self.clock.monotonic()
        try:
            text, is_error = await tool.run(args, ctx, self), False
        except (ToolError, LoomkinError) as exc:
            text, is_error = f"Error: {exc}", True
        except Exception as exc:  # a bug in a tool must not crash the agent; the model is told
            logger.exception("tool %s failed for agent %s", tool.name, self.name)
            text, is_error = (
                f"Error: {tool.name} failed unexpectedly: {type(exc).__name__}: {exc}",
                True,
            )
        duration_ms = (self.clock.monotonic() - started) * 1000.0
        await self.record_tool_result(
            call,
            text,
            outcome="error" if is_error else "ok",
            is_error=is_error,
            duration_ms=duration_ms,
        )
        await self.set_status("thinking")

    # -- inspection -------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, JSON]:
        """Return what the agent is doing now: messages, step, tool, task, iteration, usage."""
        m = self.memory
        return {
            "agent_id": m.agent_id,
            "name": m.name,
            "role": m.role,
            "team_id": m.team_id,
            "status": m.status,
            "step": m.last_step,
            "current_tool": m.current_tool,
            "task_id": m.task_id,
            "iteration": m.iteration,
            "input_tokens": m.input_tokens,
            "output_tokens": m.output_tokens,
            "cost_usd": round(m.cost_usd, 6),
            "pending_permission": m.pending_permission.request_id if m.pending_permission else None,
            "messages": [message_to_json(x) for x in m.transcript],
        }

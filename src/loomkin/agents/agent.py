"""The agent actor: identity, a memory, a mailbox, a control lane, and a way to be activated.

An idle agent owns no asyncio task: it is a few objects in the session's directory. A message
arriving in its mailbox (a task assignment, a peer message, the user's words) wakes it: its
:class:`Activator` runs the activation (:mod:`loomkin.agents.activation`) under the session's
supervisor, which works until nothing is left and returns. The rest lives beside it, each in
its own module, all taking the agent as their subject: the loop (:mod:`~loomkin.agents.loop`),
the inbox (:mod:`~loomkin.agents.inbox`), tool execution (:mod:`~loomkin.agents.execution`)
and the permission gate (:mod:`~loomkin.agents.permissions`). This class only journals what
happens to the agent and applies its controls.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, Protocol

from loomkin.agents.control import (
    Checkpoint,
    ControlCommand,
    ControlLane,
    dropped_events,
    requeue,
)
from loomkin.agents.memory import AgentSnapshot, snapshot_of
from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
    message_to_json,
)
from loomkin.core.events import (
    AgentStatusChanged,
    BudgetExceeded,
    ControlApplied,
    Event,
    LoopFinished,
    ToolCallCompleted,
    TranscriptAppended,
)
from loomkin.core.taskstates import WORKING_STATUSES
from loomkin.ids import AgentId, CallId, RequestId, SessionId, TeamId
from loomkin.runtime.mailbox import Mailbox
from loomkin.tools.base import ToolContext

if TYPE_CHECKING:
    from loomkin.agents.budgets import Breach
    from loomkin.agents.context import AgentContext
    from loomkin.agents.memory import AgentMemory
    from loomkin.agents.roles import Role
    from loomkin.bus import BusMessage
    from loomkin.core.records import AgentStatus, TaskStatus
    from loomkin.llm.model import Model, ResponseBuilder, ToolSchema
    from loomkin.runtime.clock import Clock
    from loomkin.tools.base import ToolSet

__all__ = ["Activator", "Agent", "AgentSnapshot", "ToolOutcome"]

logger = logging.getLogger(__name__)

ToolOutcome = Literal["ok", "error", "skipped", "interrupted", "denied"]


class Activator(Protocol):
    """Runs an agent's activation when there is something to do (the session's supervisor)."""

    def activate(self, agent: Agent) -> None:
        """Start the agent's activation unless it runs already."""
        ...


class Agent:
    """One agent of a session: identity, memory, mailbox, control lane; its loop runs elsewhere."""

    def __init__(
        self,
        *,
        ctx: AgentContext,
        memory: AgentMemory,
        role: Role,
        model: Model,
        tools: ToolSet[AgentContext],
        system_prompt: str,
        activator: Activator,
        request_tools: tuple[ToolSchema, ...] | None = None,
    ) -> None:
        self.ctx = ctx
        self.memory = memory
        self.role = role
        self.model = model
        self.tools = tools
        self.system_prompt = system_prompt
        self.request_tools = request_tools
        """The tool schemas every request carries (``None``: every tool's, in full)."""
        self.controls = ControlLane()
        self.mailbox: Mailbox[BusMessage, ControlCommand] = Mailbox(on_arrival=self.wake)
        self.deferred: list[BusMessage] = []
        """Task assignments put aside while another task is in progress (one at a time)."""
        self.streaming: ResponseBuilder | None = None
        """The model call's answer as it streams in (None between calls): a live view only;
        what counts is journaled when the call ends."""
        self._activator = activator

    # -- identity -----------------------------------------------------------------------------

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
        return self.ctx.session_id

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def max_iterations(self) -> int:
        return self.ctx.settings.max_iterations

    def __repr__(self) -> str:
        return f"<Agent {self.name!r} ({self.role.name}) {self.memory.status}>"

    # -- journaling ---------------------------------------------------------------------------

    async def emit(self, *events: Event) -> None:
        """Append events to the log (the memory is updated as the log's projection)."""
        await self.ctx.log.append(*events)

    async def set_status(self, status: AgentStatus, reason: str = "") -> None:
        """Record a status change (nothing is written if the status is unchanged)."""
        await self.emit(*self.status_change(status, reason))

    def status_change(self, status: AgentStatus, reason: str = "") -> list[AgentStatusChanged]:
        """The event that changes the status to ``status`` (none if it is that already).

        For a batch that records a decision together with the status it leads to.
        """
        previous = self.memory.status
        if previous == status:
            return []
        return [
            AgentStatusChanged(
                session_id=self.session_id,
                agent_id=self.agent_id,
                status=status,
                previous=previous,
                reason=reason,
            )
        ]

    async def append_transcript(self, message: ChatMessage, *with_events: Event) -> None:
        """Append ``message`` to the transcript, atomically with ``with_events``."""
        await self.emit(*with_events, self.transcript_event(message))

    def transcript_event(
        self, message: ChatMessage, *, message_id: str | None = None, notice: str | None = None
    ) -> TranscriptAppended:
        """The event that appends ``message``, with the markers the memory reads back."""
        data = message_to_json(message)
        if message_id is not None:
            data["message_id"] = message_id  # marks the bus message as read
        if notice is not None:
            data["notice"] = notice
        return TranscriptAppended(session_id=self.session_id, agent_id=self.agent_id, message=data)

    async def record_tool_result(
        self,
        call: ToolCall,
        text: str,
        *,
        outcome: ToolOutcome,
        is_error: bool,
        duration_ms: float = 0.0,
        status: AgentStatus | None = None,
    ) -> None:
        """Journal a tool call's result, its transcript message and ``status``, in one batch."""
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
        result = ToolResultMessage(
            call_id=call.call_id, name=call.name, content=text, is_error=is_error
        )
        then = [] if status is None else self.status_change(status)
        await self.append_transcript(result, completed, *then)

    # -- waking and controls ------------------------------------------------------------------

    def wake(self) -> None:
        """Start working if there is something to do (called when a message arrives)."""
        if self.memory.status in ("paused", "crashed") and not self.poll_controls():
            return
        self._activator.activate(self)

    def poll_controls(self) -> bool:
        """Move control commands waiting in the mailbox onto the lane; True if one is pending."""
        self.take_control_commands()
        return self.controls.pending()

    def take_control_commands(self) -> None:
        """Move control commands waiting in the mailbox onto the lane."""
        while (command := self.mailbox.take_control()) is not None:
            self.controls.add(command)

    def submit_control(self, command: ControlCommand) -> None:
        """Put a control command on the lane (after it was journaled) and wake the agent."""
        if command.action == "pause" and command.force:
            self.ctx.permissions.force_pause(self.agent_id)
        self.mailbox.put_control(command)

    def requeue_controls(self) -> bool:
        """Put the control requests without an outcome back on the lane (after a restart).

        Nothing is woken here (the session decides which agents resume). Returns whether a
        pause, resume or cancel now waits on the lane.
        """
        requeue(self.controls, self.memory.controls_to_requeue(), now=self.clock.monotonic())
        return self.controls.pending()

    # -- control outcomes (each one batch: the decision and everything it entails) -------------

    def _outcomes(self, *applied: ControlApplied) -> list[Event]:
        """``applied``, with the outcome of every command the lane dropped meanwhile."""
        return [*applied, *dropped_events(self.controls, self.session_id, self.agent_id)]

    async def control_applied(self, command: ControlCommand, where: Checkpoint) -> None:
        """Journal that ``command`` took effect at ``where``, with its latency."""
        await self.emit(*self._outcomes(self._applied(command, where)))

    def _applied(self, command: ControlCommand, where: Checkpoint) -> ControlApplied:
        latency_ms = max(0.0, (self.clock.monotonic() - command.requested_at) * 1000.0)
        return ControlApplied(
            session_id=self.session_id,
            agent_id=self.agent_id,
            request_id=RequestId(command.request_id),
            action=command.action,
            checkpoint=where,
            latency_ms=latency_ms,
        )

    async def enter_paused(
        self, command: ControlCommand, where: Checkpoint, *, reason: str
    ) -> None:
        """Record the pause and the status change, in one batch (the loop then returns)."""
        applied = self._outcomes(self._applied(command, where))
        await self._with_task(
            [*applied, *self.status_change("paused", reason)], WORKING_STATUSES, "paused", reason
        )

    async def apply_resume(
        self, command: ControlCommand, where: Checkpoint, *, working: bool
    ) -> None:
        """Record the resume and, if the agent was paused, its new status, in one batch."""
        status = self.status_change("thinking" if working else "idle", "resumed")
        events = [*self._outcomes(self._applied(command, where))]
        if self.memory.status == "paused":
            events += status
            # The task paused with the agent goes back in progress with it.
            await self._with_task(events, "paused", "in_progress", "resumed")
            return
        await self.emit(*events)

    async def _with_task(
        self,
        events: list[Event],
        expected: TaskStatus | frozenset[TaskStatus],
        status: TaskStatus,
        note: str,
    ) -> None:
        """Append ``events``, moving the agent's task from ``expected`` to ``status`` with them.

        A pause pauses the task the agent works on and a resume restores it, in the batch of
        the pause or resume itself (a crash never leaves one without the other).
        """
        task_id = self.memory.task_id
        if task_id is None or self.ctx.tasks.owner_of(task_id) != self.agent_id:
            await self.emit(*events)
            return
        await self.ctx.tasks.move_if(
            task_id, expected, status, by=self.agent_id, note=note, also=events
        )

    async def apply_steers(self, commands: list[ControlCommand], where: Checkpoint) -> None:
        """Put steering texts into the transcript with their outcomes, in one batch."""
        events: list[Event] = []
        for command in commands:
            guidance = UserMessage(source="guidance", text=f"[User guidance]: {command.text}")
            events += [self.transcript_event(guidance), self._applied(command, where)]
        await self.emit(*events, *self._outcomes())

    async def apply_cancel(self, command: ControlCommand, where: Checkpoint) -> None:
        """End the current task as cancelled, keeping its partial result; go idle (one batch)."""
        task_id = self.memory.task_id
        events = [
            *self._outcomes(self._applied(command, where)),
            *self.status_change("idle", "cancelled by user"),
        ]
        call = self.memory.open_model_call
        if call is not None:  # cut off by a restart, and now never made again
            events.append(call.dropped(self.session_id, self.agent_id, "cancelled by user"))
        if where == "idle" and self.memory.loop_open:
            # A loop cut short (a crash) that no driver will finish: it ends here, cancelled,
            # or a later restart would take the cancelled work up again.
            events.append(
                LoopFinished(
                    session_id=self.session_id,
                    agent_id=self.agent_id,
                    outcome="cancelled",
                    text="cancelled by user",
                    iterations=self.memory.iteration,
                    task_id=task_id,
                )
            )
        if task_id is None:
            await self.emit(*events)
        else:
            await self.ctx.tasks.cancel_with_partial(
                self, task_id, self.partial_result(), also=events
            )

    def partial_result(self) -> str:
        """The agent's last words so far (what a cancelled task keeps as its result)."""
        for message in reversed(self.memory.transcript):
            if isinstance(message, AssistantMessage) and message.text.strip():
                return message.text
        return ""

    # -- budgets and nudges ---------------------------------------------------------------------

    def budget_breach(self) -> Breach | None:
        """The budget the next model call would break, if any."""
        return self.ctx.budgets.breach(self.agent_id)

    async def enter_budget_pause(self, breach: Breach) -> None:
        """Pause for a budget breach and ask the lead or the user (finished work is kept)."""
        exceeded = BudgetExceeded(
            session_id=self.session_id,
            agent_id=self.agent_id,
            scope=breach.scope,
            limit_usd=breach.limit_usd,
            spent_usd=breach.spent_usd,
            limit_tokens=breach.limit_tokens,
            spent_tokens=breach.spent_tokens,
        )
        lead = self.ctx.directory.lead_of(self.team_id)
        notices = []
        if lead is not None and lead.agent_id != self.agent_id:
            notices.append(
                self.ctx.messages.message(
                    "budget_exceeded",
                    f"Agent {self.name} paused: {breach.description}. Its finished work is "
                    "kept. Ask the user to raise the budget, or reassign the remaining work.",
                    to_agent=lead.agent_id,
                )
            )
        paused = self.status_change("paused", f"budget exceeded: {breach.description}")
        # One batch: never "exceeded" yet running, nor the agent paused and its task not.
        await self._with_task(
            [exceeded, *notices, *paused], WORKING_STATUSES, "paused", breach.description
        )

    # -- tools and inspection ---------------------------------------------------------------------

    def tool_context(self, call: ToolCall) -> ToolContext:
        """Return the context a tool call runs in."""
        # A speculating agent works in its own workspace: nothing reaches the shared tree
        # before its assumptions are checked and the workspace is merged.
        workspace = self.ctx.speculation.root_for(self.memory.task_id)
        return ToolContext(
            project_root=self.ctx.project_root if workspace is None else workspace,
            agent_id=self.agent_id,
            agent_name=self.name,
            team_id=self.team_id,
            session_id=self.session_id,
            call_id=CallId(call.call_id),
            task_id=self.memory.task_id,
            role=self.role.name,
        )

    def snapshot(self) -> AgentSnapshot:
        """What the agent is doing now: messages, step, tool, task, iteration, usage."""
        return snapshot_of(self.memory)

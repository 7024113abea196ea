"""An agent's working memory, rebuilt from its own event stream.

Everything the loop needs to continue after a pause or a process restart is derived from
the agent's events: the transcript (``TranscriptAppended``), which tool calls started and
which completed (``ToolCallStarted`` / ``ToolCallCompleted``), the model call started and
not ended (after a crash: it is retried), whether the agent is paused
(``AgentStatusChanged``), the iteration reached in the current loop, the usage so far, the
control requests not yet applied, whether the loop serves the user and whether it was nudged
to complete its task. Transcript messages may carry markers beside the message itself
(``message_id``: the bus message it reads; ``notice``: a system notice such as the completion
nudge), which this projection reads back.
Nothing here is authoritative on its own: :meth:`AgentMemory.apply` is the only writer, and
the same method serves live updates and replays, so a restarted agent is exactly the agent
that was acknowledged before the crash.

Control requests: ``pending_controls`` holds every ``ControlRequested`` that has no outcome
yet (``ControlApplied`` or ``ControlDropped``), in request order, superseded ones included:
the agent journals a superseded request's outcome in the same batch as the control that
replaced it, so until then it is genuinely unresolved. After a restart these are put back on
the control lane in this order (:meth:`AgentMemory.controls_to_requeue`), which rebuilds the
same supersessions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
    message_from_json,
    message_to_json,
)
from loomkin.core.events import (
    JSON,
    AgentSpawned,
    AgentStatusChanged,
    ContextCompacted,
    ControlApplied,
    ControlDropped,
    ControlRequested,
    Event,
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
    PermissionRequested,
    PermissionResolved,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
    TranscriptAppended,
)
from loomkin.core.records import AgentStatus
from loomkin.ids import AgentId, CallId, SessionId, TaskId

__all__ = [
    "COMPLETION_NUDGE",
    "INTERRUPTED",
    "AgentMemory",
    "AgentSnapshot",
    "OpenModelCall",
    "PendingPermission",
    "snapshot_of",
]

_LEAVES = frozenset(
    {
        "completed",
        "failed",
        "cancelled",
        "pending",
        "assigned",
        "completed_tentative",
        "discarded_tentative",
    }
)
"""Statuses at which a task stops being its owner's current task."""

COMPLETION_NUDGE = "completion_nudge"
"""The ``notice`` marker of the message asking an agent to complete (or block) its task."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingPermission:
    """A permission prompt that was asked and not yet answered."""

    request_id: str
    call_id: str
    tool: str
    target: str


INTERRUPTED = "interrupted: the process stopped during the call"
"""The error of a model call's attempt that a restart cut off."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenModelCall:
    """A model call journaled as started that has not ended yet.

    Outside a running call this only happens when the process stopped during one: the
    loop then closes the attempt that was cut off and makes the same call again
    (:func:`~loomkin.agents.modelcall.close_interrupted`).
    """

    call_id: CallId
    iteration: int
    """The iteration the call counts as (a retry of it is the same iteration)."""
    model: str
    request: dict[str, JSON]
    """The request journaled with ``ModelCallStarted``."""
    failures: int = 0
    """Failed attempts journaled so far."""
    attempt_running: bool = True
    """False once the last attempt was journaled as failed (a retry was still to come)."""

    def dropped(self, session_id: SessionId, agent_id: AgentId, why: str) -> ModelCallFailed:
        """The event that ends this call without another attempt, saying ``why``."""
        return ModelCallFailed(
            session_id=session_id,
            agent_id=agent_id,
            call_id=self.call_id,
            error=f"{INTERRUPTED}; {why}",
            attempt=max(self.failures, 1),
            will_retry=False,
        )


@dataclass(slots=True, kw_only=True)
class AgentMemory:
    """What one agent knows about itself; a projection of its event stream."""

    agent_id: str
    name: str = ""
    team_id: str = ""
    role: str = ""
    model: str = ""
    status: AgentStatus = "idle"
    transcript: list[ChatMessage] = field(default_factory=list)
    started_calls: set[str] = field(default_factory=set)
    completed_calls: set[str] = field(default_factory=set)
    call_attempts: dict[str, int] = field(default_factory=dict)
    """The latest attempt started of each tool call (an idempotent one may be re-run)."""
    iteration: int = 0
    """Model calls made in the current loop (reset when a loop ends, kept across a pause)."""
    open_model_call: OpenModelCall | None = None
    """The model call started and not ended (a crash cut it off, when no call runs)."""
    task_id: TaskId | None = None
    input_tokens: int = 0
    cached_input_tokens: int = 0
    """Of ``input_tokens``, those read from the provider's prompt cache."""
    output_tokens: int = 0
    cost_usd: float = 0.0
    pending_permission: PendingPermission | None = None
    current_tool: str | None = None
    last_step: str = "idle"
    read_messages: set[str] = field(default_factory=set)
    """Ids of bus messages already folded into the transcript (not redelivered on restore)."""
    loop_open: bool = False
    """True from the first transcript change of a loop until its ``LoopFinished``: a restart
    finding it true knows the loop was cut short, whatever the status said."""
    serving_user: bool = False
    """The current loop read a message from the user, so its final answer is a reply."""
    nudged_for: TaskId | None = None
    """The task the agent was last nudged to complete (it is nudged once per task)."""
    pending_controls: dict[str, ControlRequested] = field(default_factory=dict)
    """Control requests journaled without an outcome yet, by request id, oldest first."""
    resolved_controls: set[str] = field(default_factory=set)
    """Request ids that got an outcome (to tell an old log's implicit supersession)."""
    control_order: list[str] = field(default_factory=list)
    """Every control request id, in request order."""
    control_actions: dict[str, str] = field(default_factory=dict)
    """The action of every control request, by request id."""

    def apply(self, event: Event) -> None:  # noqa: C901 - one flat dispatch over event kinds
        """Fold one of this agent's events into the memory."""
        match event:
            case AgentSpawned(name=name, team_id=team_id, role=role, model=model):
                self.name, self.team_id, self.role, self.model = name, team_id, role, model
            case AgentStatusChanged(status=status):
                self.status = status
            case TranscriptAppended(message=message):
                self._transcript_appended(message)
            case ContextCompacted():
                self._compacted(event)
            case ModelCallStarted(iteration=iteration):
                self.iteration = iteration
                self.open_model_call = OpenModelCall(
                    call_id=event.call_id,
                    iteration=iteration,
                    model=event.model,
                    request=event.request,
                )
                self.last_step = "model_call"
            case ModelCallFailed():
                self._model_call_failed(event)
            case ModelCallCompleted(input_tokens=i, output_tokens=o, cost_usd=c):
                if self.open_model_call and self.open_model_call.call_id == event.call_id:
                    self.open_model_call = None
                self.input_tokens += i
                self.cached_input_tokens += event.cached_input_tokens
                self.output_tokens += o
                self.cost_usd += c
                self.last_step = "model_response"
            case ToolCallStarted(call_id=call_id, tool=tool, attempt=attempt):
                self.started_calls.add(call_id)
                self.call_attempts[call_id] = attempt
                self.current_tool = tool
                self.last_step = "tool_call"
            case ToolCallCompleted(call_id=call_id):
                self.completed_calls.add(call_id)
                self.current_tool = None
                self.last_step = "tool_result"
            case PermissionRequested(request_id=rid, call_id=cid, tool=tool, target=target):
                self.pending_permission = PendingPermission(
                    request_id=rid, call_id=cid, tool=tool, target=target
                )
            case PermissionResolved():
                self.pending_permission = None
            case LoopFinished(outcome="paused" | "budget"):
                self.loop_open = False
                self.last_step = "paused"  # the loop continues from here: keep its iteration
            case LoopFinished(outcome=outcome):
                self.loop_open = False
                self.iteration = 0
                self.open_model_call = None  # an ended loop retries nothing
                self.last_step = "idle"
                if outcome != "cancelled":  # a cancelled reply to the user is still owed
                    self.serving_user = False
            case ControlRequested(action="inspect"):
                pass  # answered at once, never queued
            case ControlRequested():
                self.pending_controls[event.request_id] = event
                self.control_order.append(event.request_id)
                self.control_actions[event.request_id] = event.action
            case ControlApplied(request_id=request_id) | ControlDropped(request_id=request_id):
                self.pending_controls.pop(request_id, None)
                self.resolved_controls.add(request_id)
            case TaskStatusChanged(task_id=task_id, status="in_progress" | "pending_speculative"):
                self.task_id = task_id  # only the owner's task events are routed here
            case TaskStatusChanged(task_id=task_id, status=status) if task_id == self.task_id:
                if status in _LEAVES:
                    self.task_id = None
            case _:
                pass  # events about other things do not change this agent's memory

    def _model_call_failed(self, event: ModelCallFailed) -> None:
        call = self.open_model_call
        if call is None or call.call_id != event.call_id:
            return
        if not event.will_retry:
            self.open_model_call = None
            return
        self.open_model_call = dataclasses.replace(
            call, failures=event.attempt, attempt_running=False
        )

    def iterations_done(self) -> int:
        """Model calls of the current loop that ended (an interrupted one is retried, not new)."""
        return self.iteration - (1 if self.open_model_call is not None else 0)

    def _transcript_appended(self, message: dict[str, JSON]) -> None:
        self.loop_open = True
        chat = message_from_json(message)
        self.transcript.append(chat)
        message_id = message.get("message_id")
        if isinstance(message_id, str):
            self.read_messages.add(message_id)
        if isinstance(chat, UserMessage) and chat.source == "user":
            self.serving_user = True
        if message.get("notice") == COMPLETION_NUDGE:
            self.nudged_for = self.task_id

    def _compacted(self, event: ContextCompacted) -> None:
        """Rebuild the transcript as the compaction left it (see :class:`ContextCompacted`)."""
        transcript = [
            dataclasses.replace(m, content=event.elided[m.call_id])
            if isinstance(m, ToolResultMessage) and m.call_id in event.elided
            else m
            for m in self.transcript
        ]
        if event.summarised > 0:
            head = [transcript[i] for i in event.kept if i < event.summarised]
            summary = UserMessage(source="system", text=event.summary)
            transcript = [*head, summary, *transcript[event.summarised :]]
        self.transcript = transcript
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cost_usd += event.cost_usd

    def controls_to_requeue(self) -> list[tuple[ControlRequested, str | None]]:
        """The requests to put back on the control lane after a restart, oldest first.

        Each comes with ``None``, or with the id of a later request that superseded it and
        already has its outcome: a log written before superseded requests were journaled as
        dropped left them without one. Those must not come back to life; the agent journals
        them as dropped with its next control outcome.
        """
        out: list[tuple[ControlRequested, str | None]] = []
        order = self.control_order
        for request in self.pending_controls.values():
            later = order[order.index(request.request_id) + 1 :]
            by = next(
                (
                    r
                    for r in later
                    if r in self.resolved_controls
                    and _supersedes(self.control_actions[r], request.action)
                ),
                None,
            )
            out.append((request, by))
        return out

    def pause_pending(self) -> bool:
        """Whether a pause was asked and has not taken effect yet (it waits for a checkpoint)."""
        pause = False
        for request in self.pending_controls.values():
            if request.action in ("pause", "resume"):
                pause = request.action == "pause"
        return pause

    def unanswered_calls(self) -> list[ToolCall]:
        """Tool calls of the last assistant message that have no result in the transcript."""
        answered: set[str] = set()
        for message in reversed(self.transcript):
            if isinstance(message, ToolResultMessage):
                answered.add(message.call_id)
            elif isinstance(message, AssistantMessage):
                return [c for c in message.tool_calls if c.call_id not in answered]
            else:
                return []
        return []

    def total_tokens(self) -> int:
        """Input plus output tokens used so far."""
        return self.input_tokens + self.output_tokens


def _supersedes(newer: str, older: str) -> bool:
    """Whether a request ``newer`` replaces an ``older`` one on the control lane."""
    steady = ("pause", "resume")
    return (newer in steady and older in steady) or newer == older == "cancel"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSnapshot:
    """What an agent is doing now, as ``inspect`` shows it."""

    agent_id: str
    name: str
    role: str
    team_id: str
    status: AgentStatus
    step: str
    """The last step the loop took (``model_call``, ``tool_call``, ``paused`` ...)."""
    current_tool: str | None
    task_id: str | None
    iteration: int
    """Model calls made in the current loop."""
    input_tokens: int
    output_tokens: int
    cost_usd: float
    pending_permission: str | None
    """The request id of the permission prompt it waits on."""
    pending_controls: tuple[str, ...]
    """Controls asked and not applied yet (``pause``, ``steer`` ...), oldest first."""
    messages: tuple[dict[str, JSON], ...]
    """The transcript, as JSON objects."""


def snapshot_of(m: AgentMemory) -> AgentSnapshot:
    """What the agent is doing now: messages, step, tool, task, iteration, usage."""
    return AgentSnapshot(
        agent_id=m.agent_id,
        name=m.name,
        role=m.role,
        team_id=m.team_id,
        status=m.status,
        step=m.last_step,
        current_tool=m.current_tool,
        task_id=m.task_id,
        iteration=m.iteration,
        input_tokens=m.input_tokens,
        output_tokens=m.output_tokens,
        cost_usd=round(m.cost_usd, 6),
        pending_permission=m.pending_permission.request_id if m.pending_permission else None,
        pending_controls=tuple(c.action for c in m.pending_controls.values()),
        messages=tuple(message_to_json(x) for x in m.transcript),
    )

"""An agent's working memory, rebuilt from its own event stream.

Everything the loop needs to continue after a pause or a process restart is derived from
the agent's events: the transcript (``TranscriptAppended``), which tool calls started and
which completed (``ToolCallStarted`` / ``ToolCallCompleted``), whether the agent is paused
(``AgentStatusChanged``), the iteration reached in the current loop and the usage so far.
Nothing here is authoritative on its own: :meth:`AgentMemory.apply` is the only writer, and
the same method serves live updates and replays, so a restarted agent is exactly the agent
that was acknowledged before the crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    ToolCall,
    ToolResultMessage,
    message_from_json,
)
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    Event,
    LoopFinished,
    ModelCallCompleted,
    ModelCallStarted,
    PermissionRequested,
    PermissionResolved,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
    TranscriptAppended,
)
from loomkin.core.records import AgentStatus
from loomkin.ids import TaskId

__all__ = ["AgentMemory", "PendingPermission"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingPermission:
    """A permission prompt that was asked and not yet answered."""

    request_id: str
    call_id: str
    tool: str
    target: str


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
    iteration: int = 0
    """Model calls made in the current loop (reset when a loop ends, kept across a pause)."""
    task_id: TaskId | None = None
    input_tokens: int = 0
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

    def apply(self, event: Event) -> None:  # noqa: C901 - one flat dispatch over event kinds
        """Fold one of this agent's events into the memory."""
        match event:
            case AgentSpawned(name=name, team_id=team_id, role=role, model=model):
                self.name, self.team_id, self.role, self.model = name, team_id, role, model
            case AgentStatusChanged(status=status):
                self.status = status
            case TranscriptAppended(message=message):
                self.loop_open = True
                self.transcript.append(message_from_json(message))
                message_id = message.get("message_id")
                if isinstance(message_id, str):
                    self.read_messages.add(message_id)
            case ModelCallStarted(iteration=iteration):
                self.iteration = iteration
                self.last_step = "model_call"
            case ModelCallCompleted(input_tokens=i, output_tokens=o, cost_usd=c):
                self.input_tokens += i
                self.output_tokens += o
                self.cost_usd += c
                self.last_step = "model_response"
            case ToolCallStarted(call_id=call_id, tool=tool):
                self.started_calls.add(call_id)
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
            case LoopFinished():
                self.loop_open = False
                self.iteration = 0
                self.last_step = "idle"
            case TaskStatusChanged(task_id=task_id, status="in_progress"):
                self.task_id = task_id  # only the owner's task events are routed here
            case TaskStatusChanged(task_id=task_id, status=status) if task_id == self.task_id:
                if status in ("completed", "failed", "cancelled", "pending", "assigned"):
                    self.task_id = None
            case _:
                pass  # events about other things do not change this agent's memory

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

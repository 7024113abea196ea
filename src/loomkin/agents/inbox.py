"""The inbox: messages waiting in an agent's mailbox become readable text in its transcript.

Messages are folded into the transcript in one batch, between loop steps (or at an urgent
checkpoint). Each transcript entry carries the id of the bus message it reads, so after a
restart the messages an agent had not read are delivered again and the ones it had are not.

Three kinds are special: a ``task_assigned`` message starts the task (through the task
service, under its lock) and reads as the task's brief; an assignment that arrives while
another task is in progress is put aside (one task at a time) and read once that task is
over; an ``abort`` cancels the current task at the next checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from loomkin.agents.control import ControlCommand
from loomkin.agents.notices import redo_brief, render_message, speculative_brief, task_brief
from loomkin.core.chat import AssistantMessage, UserMessage
from loomkin.core.events import ControlRequested
from loomkin.ids import RequestId, new_id

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.bus import BusMessage
    from loomkin.core.events import Event

__all__ = ["has_input", "has_work", "ingest_messages"]


async def ingest_messages(agent: Agent) -> None:
    """Move waiting messages into the transcript as readable text (one batch)."""
    agent.take_control_commands()
    events: list[Event] = []
    for message in [*_take_deferred(agent), *agent.mailbox.drain()]:
        events.extend(await _ingest_one(agent, message))
    if events:
        await agent.emit(*events)


def has_input(agent: Agent) -> bool:
    """True when messages wait, or a task put aside can start now."""
    return len(agent.mailbox) > 0 or _deferred_ready(agent)


def has_work(agent: Agent) -> bool:
    """True when the transcript, the mailbox or a task waits for this agent."""
    if agent.memory.unanswered_calls() or has_input(agent):
        return True
    transcript = agent.memory.transcript
    if not transcript:
        return False
    last = transcript[-1]
    return not isinstance(last, AssistantMessage) or last.interrupted


def _deferred_ready(agent: Agent) -> bool:
    current = agent.memory.task_id
    return bool(agent.deferred) and (current is None or not agent.ctx.tasks.is_open(current))


def _take_deferred(agent: Agent) -> list[BusMessage]:
    """Task assignments put aside while another task ran, once that task is over."""
    if not _deferred_ready(agent):
        return []
    deferred, agent.deferred = agent.deferred, []
    return deferred


def _busy_with_another(agent: Agent, task_id: str) -> bool:
    """True when another task of the agent is still in progress."""
    current = agent.memory.task_id
    return current is not None and task_id != current and agent.ctx.tasks.is_open(current)


async def _ingest_one(agent: Agent, message: BusMessage) -> list[Event]:
    if message.msg_type == "task_assigned":
        return await _start_task(agent, message)
    cancel: list[Event] = []
    if message.msg_type == "abort" and agent.memory.task_id is not None:
        command = ControlCommand(
            request_id=RequestId(new_id("ctl_")),
            action="cancel",
            requested_at=agent.clock.monotonic(),
        )
        agent.controls.add(command)
        # Journaled with the message it comes from: a restart re-queues it if not applied.
        cancel.append(
            ControlRequested(
                session_id=agent.session_id,
                agent_id=agent.agent_id,
                request_id=RequestId(command.request_id),
                action="cancel",
                requested_by=message.from_name or "abort",
            )
        )
    source: Literal["user", "peer", "system"] = (
        "user"
        if message.msg_type == "user_message"
        else ("peer" if message.from_agent else "system")
    )
    text = render_message(message)
    return [
        *cancel,
        agent.transcript_event(
            UserMessage(source=source, text=text), message_id=message.message_id
        ),
    ]


async def _start_task(agent: Agent, message: BusMessage) -> list[Event]:
    task_id = (message.data or {}).get("task_id")
    if not isinstance(task_id, str):
        return []
    if _busy_with_another(agent, task_id):
        agent.deferred.append(message)  # one task at a time: start it after this one
        return []
    tasks = agent.ctx.tasks
    view = await tasks.start_for(agent, task_id)
    if view is None:
        return []  # reassigned, withdrawn or finished since the message was sent
    brief = task_brief(view, tasks.board.predecessor_outputs(view.task_id))
    speculation = agent.ctx.speculation
    if view.status == "pending_speculative":
        brief += "\n\n" + speculative_brief(speculation.assumption_lines(view.task_id))
    elif view.task_id in speculation.state.replay_notes:
        # Redoing discarded speculative work: the real output of every blocker, and why.
        real = tasks.board.predecessor_outputs(view.task_id, kinds=("blocks", "requires_output"))
        brief += "\n\n" + redo_brief(speculation.state.replay_notes[view.task_id], real)
    return [
        agent.transcript_event(
            UserMessage(source="system", text=brief), message_id=message.message_id
        )
    ]

"""The agent loop: small step functions and the thin driver that checks the control lane.

How this works and why:

The driver (:func:`run_loop`) looks at the agent's transcript to decide the next step, runs
it, and reads the control lane at a checkpoint between every two steps:

* ``prepare`` — fold waiting messages, steering and notices into the transcript;
* ``call_model`` — stream one model response while watching the control lane, so an ``asap``
  pause abandons the stream (even before its first chunk) and keeps what had streamed; a
  failed or silent stream is journaled and retried (:mod:`loomkin.agents.modelcall`); a
  call the process stopped in is journaled as an interrupted attempt and made again, as
  the same call and the same iteration (input that arrived meanwhile waits for the next);
* ``run_tools`` — run the tool calls of the last response one by one; each call is journaled
  as started before it runs and as completed (with its result) after, so a resume never runs
  a completed call again, and a call that was started but never completed (the process died)
  is run again as a new attempt when its tool is idempotent for its arguments
  (:mod:`~loomkin.agents.rerun`), and otherwise reported to the model as interrupted;
* ``decide`` — a response without tool calls ends the loop (after one nudge if the agent
  still owns an open task).

Because the next step is derived from the journaled transcript, the same driver serves a
fresh start, a resume after a pause and a restart after a crash. Bad model output never
crashes the agent: unknown tools, arguments that are invalid, nested too deeply or break the
schema come back as error results the model can read; a stream that raises, whatever the
error, is a failed model call. An urgent message ends a tool batch (the calls not run are
answered as skipped) before it is read, so a transcript always pairs each tool call with its
result before the next message, as OpenAI and Anthropic require.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.agents.briefing import wait_for_brief
from loomkin.agents.compaction import compact_if_needed
from loomkin.agents.execution import execute_tool
from loomkin.agents.inbox import has_input, ingest_messages
from loomkin.agents.memory import COMPLETION_NUDGE
from loomkin.agents.modelcall import call_model as one_model_call
from loomkin.agents.notices import COMPLETION_NUDGE_TEXT, EMPTY_ANSWER_NUDGE
from loomkin.agents.rerun import next_attempt
from loomkin.core.chat import AssistantMessage, ChatMessage, ToolCall, UserMessage

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.control import Checkpoint, Directive

__all__ = ["URGENT_SKIP", "LoopOutcome", "Outcome", "apply_steers", "run_loop"]

logger = logging.getLogger(__name__)

Outcome = Literal["final", "max_iterations", "cancelled", "paused", "error", "budget"]

URGENT_SKIP = "skipped: interrupted by an urgent message"
"""The result of a tool call not run because an urgent message ended its batch."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopOutcome:
    """How a loop ended."""

    outcome: Outcome
    text: str = ""


Step = Literal["run_tools", "call_model", "decide"]


def next_step(transcript: list[ChatMessage], unanswered: list[ToolCall]) -> Step:
    """Derive the next step from the transcript alone (so resumes need no extra state)."""
    if unanswered:
        return "run_tools"
    if transcript and isinstance(transcript[-1], AssistantMessage):
        last = transcript[-1]
        return "call_model" if last.interrupted else "decide"
    return "call_model"


async def run_loop(agent: Agent) -> LoopOutcome:
    """Run the agent's loop until a final answer, a pause, a cancel or the iteration limit."""
    while True:
        memory = agent.memory
        step = next_step(memory.transcript, memory.unanswered_calls())
        if step == "run_tools":
            stop = await run_tools(agent, memory.unanswered_calls())
        elif step == "decide":
            result = await decide(agent)
            if result is not None:
                return result
            continue
        else:
            stop = await call_model_step(agent)
        if stop is not None:
            return stop


async def checkpoint(agent: Agent, where: Checkpoint) -> LoopOutcome | None:
    """Read the control lane (and urgent messages) at ``where``; return an outcome to stop.

    An urgent message is read at once, but never in the middle of a tool batch: every tool
    call of a response must be answered before the next user message (OpenAI and Anthropic
    both reject anything else), so the calls not run yet are answered as skipped first.
    """
    directive = agent.controls.at(where) if agent.poll_controls() else None
    if directive is not None:
        return await apply_directive(agent, directive, where)
    if agent.mailbox.has_urgent():
        await skip_unanswered(agent, URGENT_SKIP)
        await ingest_messages(agent)
    return None


async def apply_directive(agent: Agent, directive: Directive, where: Checkpoint) -> LoopOutcome:
    """Skip the tool calls still planned, then pause or cancel."""
    reason = "paused by user" if directive.action == "pause" else "cancelled by user"
    await skip_unanswered(agent, f"skipped: {reason}")
    if directive.action == "pause":
        await agent.enter_paused(directive.command, where, reason=directive.reason)
        return LoopOutcome(outcome="paused", text=reason)
    await agent.apply_cancel(directive.command, where)
    return LoopOutcome(outcome="cancelled", text=reason)


async def skip_unanswered(agent: Agent, text: str) -> None:
    """Give every unanswered tool call a result saying it did not run."""
    for call in agent.memory.unanswered_calls():
        await agent.record_tool_result(call, text, outcome="skipped", is_error=True)


# -- call_model ---------------------------------------------------------------------------------


async def apply_steers(agent: Agent) -> None:
    """Put pending steering texts into the transcript, just before the next model call."""
    agent.take_control_commands()
    steers = agent.controls.take_steers()
    if steers:  # the guidance and its outcome in one batch: a restart never applies it twice
        await agent.apply_steers(steers, "before_model")


async def call_model_step(agent: Agent) -> LoopOutcome | None:
    """Prepare the prompt, check budget and limits, and make one model call."""
    stop = await checkpoint(agent, "before_model")
    if stop is not None:
        return stop
    # A call a restart cut off is made again as it was (the same request, the same
    # iteration): input that arrived meanwhile waits for the next call, as it would have.
    retrying = agent.memory.open_model_call is not None
    if not retrying:
        stop = await _gather_input(agent)
        if stop is not None:
            return stop
    if agent.memory.iterations_done() >= agent.max_iterations:
        text = (
            f"Stopped after reaching the iteration limit ({agent.max_iterations} model calls) "
            "without a final answer."
        )
        await agent.append_transcript(AssistantMessage(text=text))
        return LoopOutcome(outcome="max_iterations", text=text)
    breach = agent.budget_breach()
    if breach is not None:
        await agent.enter_budget_pause(breach)
        return LoopOutcome(outcome="budget", text=breach.description)
    if not retrying and await compact_if_needed(agent):
        # Compaction is a step like any other: a pause or cancel asked meanwhile lands here.
        stop = await checkpoint(agent, "before_model")
        if stop is not None:
            return stop
    return await call_model(agent)


async def _gather_input(agent: Agent) -> LoopOutcome | None:
    """Fold the brief, waiting messages and steering into the transcript before a call."""
    if await wait_for_brief(agent):  # the Concierge plans once the Orienter briefed it
        stop = await checkpoint(agent, "before_model")
        if stop is not None:
            return stop
    await ingest_messages(agent)
    await apply_steers(agent)
    if not agent.memory.transcript:
        # Woken by messages that turned out to need nothing (an assignment withdrawn before
        # it was read): there is nothing to answer, and no provider takes an empty request.
        return LoopOutcome(outcome="final")
    return None


async def call_model(agent: Agent) -> LoopOutcome | None:
    """Make one model call (:mod:`loomkin.agents.modelcall`) and act on how it ended."""
    result = await one_model_call(agent)
    match result.kind:
        case "answered":
            return await checkpoint(agent, "after_model")
        case "cut" if result.directive is not None:
            return await apply_directive(agent, result.directive, "stream")
        case "cut":
            return None  # an asap steer: the next model call carries the guidance
        case "failed":
            return LoopOutcome(outcome="error", text=f"The model provider failed: {result.error}")


# -- run_tools ----------------------------------------------------------------------------------


async def run_tools(agent: Agent, calls: list[ToolCall]) -> LoopOutcome | None:
    """Run the planned tool calls in order, with a checkpoint after each."""
    for call in calls:
        if call.call_id not in agent.memory.started_calls:
            await execute_tool(agent, call)
        elif (attempt := next_attempt(agent, call)) is not None:
            await execute_tool(agent, call, attempt=attempt)  # cut off by a crash; idempotent
        else:
            # Started before a crash and never completed: report it, never re-run it.
            await agent.record_tool_result(
                call,
                "interrupted: the process stopped while this tool call was running; it may or "
                "may not have taken effect. Check the current state before retrying it.",
                outcome="interrupted",
                is_error=True,
            )
        stop = await checkpoint(agent, "after_tool")
        if stop is not None:
            return stop
        if not agent.memory.unanswered_calls():
            return None  # the batch ended early (an urgent message skipped the rest)
    return None


# -- decide -------------------------------------------------------------------------------------


async def decide(agent: Agent) -> LoopOutcome | None:
    """A final answer: nudge once if a task is still open, else end the loop."""
    last = agent.memory.transcript[-1]
    assert isinstance(last, AssistantMessage)
    if has_input(agent):
        # New input arrived while the model was answering (or a task put aside can start
        # now that the current one is over): keep going with it.
        await ingest_messages(agent)
        if not isinstance(agent.memory.transcript[-1], AssistantMessage):
            return None
    agent.poll_controls()  # move waiting control commands onto the lane
    if agent.controls.steers:
        # Guidance arrived while the model was answering: it lands in one more model call.
        # (Left on the lane it would wait, unacknowledged, for the agent's next message.)
        await apply_steers(agent)
        return None
    if not last.text.strip():
        return await _after_empty_answer(agent)
    if _needs_completion_nudge(agent):
        # Recorded (with its notice marker), so the agent is asked once per task.
        nudge = UserMessage(source="system", text=COMPLETION_NUDGE_TEXT)
        await agent.emit(agent.transcript_event(nudge, notice=COMPLETION_NUDGE))
        return None
    return LoopOutcome(outcome="final", text=last.text)


def _needs_completion_nudge(agent: Agent) -> bool:
    """True (once per task) when the agent answered without completing its open task."""
    task_id = agent.memory.task_id
    tasks = agent.ctx.tasks
    if task_id is None or not tasks.is_open(task_id):
        return False
    if tasks.task(task_id).status == "blocked":
        return False  # it said why it waits (what the nudge asks); a message wakes it
    return agent.memory.nudged_for != task_id


async def _after_empty_answer(agent: Agent) -> LoopOutcome | None:
    """An empty answer (no text, no calls, as weak models give): nudge once, then give up."""
    transcript = agent.memory.transcript
    nudged = len(transcript) > 1 and transcript[-2] == UserMessage(
        source="system", text=EMPTY_ANSWER_NUDGE
    )
    if nudged:
        return LoopOutcome(outcome="error", text="The model gave an empty answer twice.")
    await agent.append_transcript(UserMessage(source="system", text=EMPTY_ANSWER_NUDGE))
    return None

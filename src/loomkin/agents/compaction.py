"""Context that never overflows: compact an agent's transcript before a call that would not fit.

How this works and why:

* Before each model call the loop estimates the request (:func:`~loomkin.llm.caching.
  estimate_tokens`, the fixed chars-per-token rule) against the model's context window
  (``[context]`` in ``loomkin.toml``, else the model's published window) times
  ``compact_at``. Below it nothing happens, so the request stays a byte-stable extension
  of the previous one (prompt caching).
* Above it, in order, until the request is down to ``compact_to`` of the window (room for
  the next calls to grow, and share a cached prefix, before another compaction):

  1. *Elide* old tool results: every result before the newest ``keep_turns`` turns (a turn
     is a model response and its tool results) becomes a one-line record naming the call,
     which the model can make again to see it. The call stays, so a call is never split
     from its result.
  2. *Summarise* older turns: the messages before the kept turns are replaced by a summary
     written by a model call (or, when that fails or is off, a list of what the turns did),
     keeping word for word what the agent needs: the task brief, the user's words and
     guidance, and questions put to it. The cut is always at a model response, so no tool
     batch is cut in half.
  3. *Elide* the results of the kept turns too, the newest batch last.

* The outcome is one ``ContextCompacted`` event: the memory replays it into the same
  transcript after a restart, and a crash before it leaves the transcript as it was (the
  compaction runs again). The loop reads the control lane right after it, like after any
  step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.agents.modelcall import build_request
from loomkin.agents.notices import compaction_summary_text, elided_result_text
from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from loomkin.core.events import ContextCompacted
from loomkin.llm.caching import CHARS_PER_TOKEN, estimate_tokens
from loomkin.llm.model import ModelRequest, complete
from loomkin.llm.windows import context_window

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.agents.settings import ContextSettings

__all__ = ["ELIDE_MIN_CHARS", "CompactionPlan", "compact_if_needed", "plan_compaction"]

ELIDE_MIN_CHARS = 400
"""Tool results shorter than this are kept: their record would save little."""
_SUMMARY_INPUT_CHARS = 24_000
"""What the summarising call reads of the old turns, at most (newest kept)."""
_RESULT_EXCERPT = 300
_SUMMARY_PROMPT = (
    "You compact the working memory of a coding agent. Summarise the conversation below for "
    "the agent itself: what it was asked, what it did and found (files, facts, decisions), "
    "what it changed, what failed, and what is still open. Be specific (paths, names, "
    "numbers) and brief: at most 300 words, plain text, no tool calls."
)


@dataclass(slots=True)
class CompactionPlan:
    """What a compaction does (the fields of its ``ContextCompacted`` event)."""

    elided: dict[str, str] = field(default_factory=dict)
    summarised: int = 0
    kept: tuple[int, ...] = ()
    summary_input: list[ChatMessage] = field(default_factory=list)
    """The messages the summary stands for (to be summarised), when ``summarised``."""
    tokens_after: int = 0


def window_of(agent: Agent) -> int:
    """The context window of the agent's model, as configured."""
    settings = agent.ctx.settings.context
    return settings.window_tokens or context_window(agent.model.name, settings.windows)


async def compact_if_needed(agent: Agent) -> bool:
    """Compact the agent's transcript when the next request would not fit; True if it did."""
    settings = agent.ctx.settings.context
    window = window_of(agent)
    limit = int(window * settings.compact_at)
    request = build_request(agent)
    before = estimate_tokens(request)
    if before <= limit:
        return False
    fixed = before - _tokens_of(agent.memory.transcript)  # system prompt and tool schemas
    target = int(window * min(settings.compact_to, settings.compact_at))
    plan = plan_compaction(agent.memory.transcript, target - fixed, settings)
    if not plan.elided and not plan.summarised:
        return False  # nothing left to compact (one huge message): the provider will say so
    summary, by_model, usage = "", False, (0, 0, 0.0)
    if plan.summarised:
        summary, by_model, usage = await _summarise(agent, plan.summary_input, settings)
        turns = sum(isinstance(m, AssistantMessage) for m in plan.summary_input)
        summary = compaction_summary_text(summary, turns)
        plan.tokens_after += _chars_tokens(len(summary))
    await agent.emit(
        ContextCompacted(
            session_id=agent.session_id,
            agent_id=agent.agent_id,
            elided=plan.elided,
            summarised=plan.summarised,
            kept=plan.kept,
            summary=summary,
            tokens_before=before,
            tokens_after=plan.tokens_after + fixed,
            window_tokens=window,
            summarised_by_model=by_model,
            input_tokens=usage[0],
            output_tokens=usage[1],
            cost_usd=usage[2],
        )
    )
    return True


def plan_compaction(
    transcript: list[ChatMessage], budget: int, settings: ContextSettings
) -> CompactionPlan:
    """Plan the smallest compaction that brings ``transcript`` under ``budget`` tokens.

    Pure: the same transcript and budget give the same plan.
    """
    plan = CompactionPlan()
    calls = _calls_by_id(transcript)
    starts = [i for i, m in enumerate(transcript) if isinstance(m, AssistantMessage)]
    keep_from = starts[-settings.keep_turns] if len(starts) >= settings.keep_turns else 0
    tokens = _tokens_of(transcript)
    # 1. Old tool results become records.
    tokens = _elide(transcript, range(keep_from), calls, plan, tokens)
    if tokens <= budget:
        plan.tokens_after = tokens
        return plan
    # 2. Turns before the kept ones are summarised; what the agent needs is kept.
    if keep_from > 0:
        brief = max((i for i in range(keep_from) if _is_brief(transcript[i])), default=None)
        kept = tuple(i for i in range(keep_from) if i == brief or _pinned(transcript[i]))
        plan.summarised = keep_from
        plan.kept = kept
        plan.summary_input = [
            _with_elided(transcript[i], plan.elided) for i in range(keep_from) if i not in kept
        ]
        tokens = _tokens_of(
            [_with_elided(m, plan.elided) for m in transcript[keep_from:]]
        ) + _tokens_of([transcript[i] for i in kept])
    # 3. Still too big: the kept turns' results too, oldest first.
    if tokens > budget:
        tokens = _elide(transcript, range(keep_from, len(transcript)), calls, plan, tokens, budget)
    plan.tokens_after = tokens
    return plan


def _elide(
    transcript: list[ChatMessage],
    positions: range,
    calls: dict[str, ToolCall],
    plan: CompactionPlan,
    tokens: int,
    budget: int | None = None,
) -> int:
    for i in positions:
        if budget is not None and tokens <= budget:
            break
        message = transcript[i]
        if (
            not isinstance(message, ToolResultMessage)
            or message.call_id in plan.elided
            or len(message.content) < ELIDE_MIN_CHARS
        ):
            continue
        call = calls.get(message.call_id)
        text = elided_result_text(
            message.name, call.arguments if call else "", len(message.content)
        )
        plan.elided[message.call_id] = text
        tokens -= _chars_tokens(len(message.content)) - _chars_tokens(len(text))
    return tokens


def _is_brief(message: ChatMessage) -> bool:
    return isinstance(message, UserMessage) and message.text.startswith("[Task assigned]")


def _pinned(message: ChatMessage) -> bool:
    """Whether a message must survive a summary: the user's words, guidance, questions.

    (The newest task brief is kept too; an earlier summary is summarised again.)
    """
    if not isinstance(message, UserMessage):
        return False
    return message.source in ("user", "guidance") or message.text.startswith("[Question from")


def _with_elided(message: ChatMessage, elided: dict[str, str]) -> ChatMessage:
    if isinstance(message, ToolResultMessage) and message.call_id in elided:
        return ToolResultMessage(
            call_id=message.call_id,
            name=message.name,
            content=elided[message.call_id],
            is_error=message.is_error,
        )
    return message


def _calls_by_id(transcript: list[ChatMessage]) -> dict[str, ToolCall]:
    return {
        c.call_id: c for m in transcript if isinstance(m, AssistantMessage) for c in m.tool_calls
    }


def _chars_tokens(chars: int) -> int:
    return -(-chars // CHARS_PER_TOKEN)


def _tokens_of(messages: list[ChatMessage]) -> int:
    return estimate_tokens(ModelRequest(messages=tuple(messages)))


# -- the summary ----------------------------------------------------------------------------------


async def _summarise(
    agent: Agent, messages: list[ChatMessage], settings: ContextSettings
) -> tuple[str, bool, tuple[int, int, float]]:
    """The summary text, whether a model wrote it, and the call's usage."""
    fallback = _listing(messages)
    rendered = _render(messages)
    if not settings.summarise or not rendered.strip():
        return fallback, False, (0, 0, 0.0)
    request = ModelRequest(
        messages=(SystemMessage(text=_SUMMARY_PROMPT), UserMessage(text=rendered)),
        max_tokens=1024,
    )
    try:
        # A model that never answers must not hold the loop: the stream's idle limit bounds it.
        async with asyncio.timeout(agent.ctx.settings.stream_idle_timeout_s):
            response = await complete(agent.model, request)
    except Exception:  # any failure of the summary leaves the listing: never block the loop
        return fallback, False, (0, 0, 0.0)
    cost = agent.ctx.prices.cost(
        agent.model.name,
        response.input_tokens,
        response.output_tokens,
        cached_input_tokens=response.cached_input_tokens,
        cache_write_tokens=response.cache_write_tokens,
    )
    usage = (response.input_tokens, response.output_tokens, cost)
    text = response.text.strip()
    if not response.complete or response.tool_calls or not text:
        return fallback, False, usage
    return text[:4000], True, usage


def _render(messages: list[ChatMessage]) -> str:
    lines: list[str] = []
    for message in messages:
        match message:
            case UserMessage(text=text) | SystemMessage(text=text):
                lines.append(f"[input] {text}")
            case AssistantMessage(text=text, tool_calls=calls):
                if text.strip():
                    lines.append(f"[agent] {text.strip()}")
                lines.extend(f"[agent calls] {c.name}({c.arguments})" for c in calls)
            case ToolResultMessage(name=name, content=content, is_error=is_error):
                head = "error" if is_error else "result"
                lines.append(f"[{head} of {name}] {content[:_RESULT_EXCERPT]}")
    text = "\n".join(lines)
    return text[-_SUMMARY_INPUT_CHARS:]


def _listing(messages: list[ChatMessage]) -> str:
    """A summary without a model: the earlier summary, what the agent said and called."""
    lines: list[str] = []
    for message in messages:
        if isinstance(message, UserMessage) and message.text.startswith("[Context compacted]"):
            lines.append(message.text.split("\n", 1)[-1])
        elif isinstance(message, AssistantMessage):
            if message.text.strip():
                lines.append(f"- said: {message.text.strip()[:200]}")
            lines.extend(f"- called {c.name}({c.arguments[:120]})" for c in message.tool_calls)
    text = "\n".join(lines)
    return text[-3000:] if len(text) > 3000 else text

"""One model call of the agent loop: stream it beside the control lane, retry what failed.

How this works and why:

* The model's stream runs in a task of its own
  (:class:`~loomkin.agents.streampump.StreamPump`) that queues every event; the loop waits
  for whichever comes first: an event, a control command on the agent's lane, or the end
  of the idle timeout. So an ``asap`` pause, a cancel or an ``asap`` steer lands
  while the model is silent (before its first chunk, during a retry's backoff), not only
  between chunks. Cutting the stream cancels that task, which closes the generator where it
  waits and, underneath, the HTTP response.
* A stream silent for ``stream_idle_timeout_s`` (keep-alives only, or nothing at all) is a
  failed attempt (:class:`~loomkin.errors.ProviderTimeout`).
* Any exception out of the stream is a failed attempt, whatever its type: a provider error,
  an SDK that cannot decode a broken server-sent event, a bug in a fake model; so is an event
  the response builder cannot fold. Each failure is journaled as ``ModelCallFailed``; a retry
  follows after a backoff unless the provider called the error permanent or the call already
  failed ``max_retries + 1`` times. Retries the model's wrapper announces
  (:class:`~loomkin.llm.model.RetryNotice`) are journaled the same way, with their delay, and
  count towards the same limit. Every wait (the stream, a backoff) reads the control lane, so
  a pause also cancels a backoff. All attempts share one ``call_id``: one logical call, one
  ``ModelCallStarted``, ended by ``ModelCallCompleted`` or a final ``ModelCallFailed``.
* A call the process stopped in (killed, or its host lost) is left open in the journal: a
  ``ModelCallStarted`` with no end. When the agent's loop runs again it closes the attempt
  that was cut off (:func:`close_interrupted`: a ``ModelCallFailed`` saying so, with
  ``will_retry``) and makes the same call again under the same ``call_id``, as one more
  attempt of the same iteration: a model call has no side effects, so a retry is safe, and
  every projection (feed, progress, timeline, spans) sees the old attempt end. Should the
  request have changed meanwhile (an urgent message read on the way), the old call cannot
  be retried as it was: it ends with a final ``ModelCallFailed`` and a new call of the
  same iteration is made (so too if the agent's model changed).
* The response is journaled (``ModelCallCompleted``) with its assistant message in one batch.
  Tool calls get ids of our own, unique in the log, even when the provider repeated or
  omitted its ids; a name no provider would take back in a later request is replaced.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loomkin.agents.control import Directive
from loomkin.agents.memory import INTERRUPTED
from loomkin.agents.streampump import StreamDone, StreamFailed, StreamPump
from loomkin.core.chat import AssistantMessage, ChatMessage, SystemMessage, ToolCall
from loomkin.core.events import ModelCallCompleted, ModelCallFailed, ModelCallStarted
from loomkin.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from loomkin.ids import CallId, new_id
from loomkin.llm.model import ModelRequest, ResponseBuilder, RetryNotice, ToolSchema

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.agents.agent import Agent
    from loomkin.core.events import Event
    from loomkin.core.events.base import JSON
    from loomkin.llm.model import ModelResponse

__all__ = [
    "INTERRUPTED",
    "INVALID_TOOL_NAME",
    "CallResult",
    "build_request",
    "call_model",
    "close_interrupted",
]

INVALID_TOOL_NAME = "invalid_tool_name"
"""Stands in the transcript for a tool name no provider would accept back (the provider's
name is kept in ``ModelCallCompleted.tool_calls`` as ``provider_name``)."""

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
_MAX_ERROR_CHARS = 1000
_TICK_S = 1e-3
"""A deadline this close counts as reached: a wait for less may return with the clock
unmoved (its resolution, or virtual time), and the loop would spin."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallResult:
    """How one model call ended, for the loop to act on."""

    kind: Literal["answered", "cut", "failed"]
    """``answered``: a whole response was journaled; ``cut``: a control cut the call short
    (``directive`` to apply, or ``None`` for an ``asap`` steer); ``failed``: the last attempt
    failed and no retry is left (``error`` says why)."""
    directive: Directive | None = None
    error: str = ""


def build_request(agent: Agent) -> ModelRequest:
    """Return the exact request for the next model call."""
    messages: list[ChatMessage] = [SystemMessage(text=agent.system_prompt)]
    messages.extend(agent.memory.transcript)
    tools = agent.request_tools
    if tools is None:
        tools = tuple(
            ToolSchema(name=s.name, description=s.description, parameters=s.parameters)
            for s in agent.tools.schemas()
        )
    # One key per agent: its calls share a prefix, so they should reach the same cache.
    return ModelRequest(messages=tuple(messages), tools=tools, cache_key=str(agent.agent_id))


async def call_model(agent: Agent) -> CallResult:
    """Make one model call (with its retries) and journal how it went."""
    await close_interrupted(agent)
    request = build_request(agent)
    call_id, failures = await _open_call(agent, request)
    await agent.set_status("thinking")
    try:
        return await _attempts(agent, request, call_id, failures)
    finally:
        agent.streaming = None


async def close_interrupted(agent: Agent) -> None:
    """Journal the end of the attempt a restart cut off, if the journal ends inside one.

    The call is then made again (:func:`call_model`): a restart is not a provider failure,
    so it never uses up the call's retries.
    """
    call = agent.memory.open_model_call
    if call is not None and call.attempt_running:
        await _Attempts(agent, call.call_id, failures=call.failures).interrupted()


async def _open_call(agent: Agent, request: ModelRequest) -> tuple[CallId, int]:
    """The call to make: the interrupted one again, or a new one (journaled as started).

    Returns its id and the failures it had so far.
    """
    resumed = agent.memory.open_model_call
    journaled = request.to_json()
    if (
        resumed is not None
        and resumed.model == agent.model.name
        and _same_json(resumed.request, journaled)
    ):
        return resumed.call_id, resumed.failures  # the same call, tried again
    call_id = CallId(new_id("mc_"))
    started = ModelCallStarted(
        session_id=agent.session_id,
        agent_id=agent.agent_id,
        call_id=call_id,
        iteration=agent.memory.iteration + 1 if resumed is None else resumed.iteration,
        model=agent.model.name,
        request=journaled,
        task_id=agent.memory.task_id,
    )
    if resumed is None:
        await agent.emit(started)
        return call_id, 0
    # The request (or the model) changed since the interrupted call started: that call ends
    # here, and a new one (of the same iteration) carries the new request.
    why = "made again as a new call, with what changed since"
    abandoned = resumed.dropped(agent.session_id, agent.agent_id, why)
    await agent.emit(abandoned, started)
    return call_id, 0


def _same_json(a: JSON, b: JSON) -> bool:
    """Whether two JSON values are equal once encoded (a stored request has lists for tuples)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


async def _attempts(
    agent: Agent, request: ModelRequest, call_id: CallId, failures: int
) -> CallResult:
    """Stream attempts until one answers, a control cuts the call, or retries run out."""
    attempt = _Attempts(agent, call_id, failures=failures)
    while True:
        builder = ResponseBuilder()
        agent.streaming = builder  # the live view of the answer (the cards show it)
        started = agent.clock.monotonic()
        outcome = await _stream_once(agent, request, builder, attempt)
        if isinstance(outcome, BaseException):
            delay = await attempt.failed(outcome)
            if delay is None:  # journaled with the status it leads to, in one batch
                return CallResult(kind="failed", error=_describe(agent, outcome))
            cut = await _backoff(agent, delay)
            if cut is None:
                continue
            await record_response(agent, call_id, ResponseBuilder().partial(), started)
            return cut
        if outcome is None:
            await record_response(agent, call_id, builder.build(), started)
            return CallResult(kind="answered")
        await record_response(agent, call_id, builder.partial(), started)
        return outcome


class _Attempts:
    """Counts one call's failures, journals each, and decides on the retry."""

    def __init__(self, agent: Agent, call_id: CallId, *, failures: int = 0) -> None:
        self._agent = agent
        self._call_id = call_id
        self.failures = failures

    async def interrupted(self) -> None:
        """A restart cut the running attempt off; the call is always retried.

        An interruption is not the provider failing: the process was killed or its host lost
        from outside. Giving the call up after ``max_retries`` of them left its agent idle with
        its task still claimed, so a session killed a few times never finished (the work
        stealing crash test, four kills).
        """
        self.failures += 1
        await self._journal(INTERRUPTED, will_retry=True)  # no backoff: nothing failed

    async def announced(self, notice: RetryNotice) -> None:
        """The model's wrapper failed an attempt and retries after ``notice.delay_s``."""
        self.failures += 1
        await self._journal(str(notice.error), will_retry=True, delay_s=notice.delay_s)

    async def failed(self, error: BaseException) -> float | None:
        """Journal a failed attempt; return the backoff before the retry, or ``None``."""
        self.failures += 1
        policy = self._agent.ctx.settings.model_retry
        permanent = isinstance(error, ProviderError) and not error.transient
        if permanent or self.failures > policy.max_retries:
            idle = self._agent.status_change("idle", "model provider failed")
            await self._journal(_describe(self._agent, error), will_retry=False, also=idle)
            return None
        hint = error if isinstance(error, ProviderError) else ProviderError(str(error))
        delay = policy.delay(self.failures, hint)
        await self._journal(_describe(self._agent, error), will_retry=True, delay_s=delay)
        return delay

    async def _journal(
        self,
        error: str,
        *,
        will_retry: bool,
        delay_s: float = 0.0,
        also: Sequence[Event] = (),
    ) -> None:
        agent = self._agent
        await agent.emit(
            ModelCallFailed(
                session_id=agent.session_id,
                agent_id=agent.agent_id,
                call_id=self._call_id,
                error=error[:_MAX_ERROR_CHARS],
                attempt=self.failures,
                will_retry=will_retry,
                delay_s=delay_s,
            ),
            *also,
        )


def _describe(agent: Agent, error: BaseException) -> str:
    if isinstance(error, ProviderError):
        return str(error)
    return f"{agent.model.name}: the stream failed: {type(error).__name__}: {error}"


async def _stream_once(
    agent: Agent, request: ModelRequest, builder: ResponseBuilder, attempts: _Attempts
) -> CallResult | BaseException | None:
    """Stream one attempt into ``builder``.

    Returns ``None`` when the response is whole, a ``cut`` result when a control cut it
    short, or the exception that failed the attempt (never raised: it is the model's fault).
    """
    idle_s = agent.ctx.settings.stream_idle_timeout_s
    clock = agent.clock
    try:
        pump = StreamPump(agent.model.stream(request))
    except Exception as exc:  # a model whose stream() raises before it is even iterated
        return exc
    deadline = clock.monotonic() + idle_s
    try:
        while True:
            while (item := pump.take()) is not None:
                if isinstance(item, StreamDone):
                    if not builder.finished:  # what the adapters raise for a cut stream
                        return ProviderUnavailable(
                            f"{agent.model.name}: the stream ended before the model finished"
                        )
                    return None
                if isinstance(item, StreamFailed):
                    return item.error
                if isinstance(item, RetryNotice):
                    await attempts.announced(item)
                    deadline = clock.monotonic() + item.delay_s + idle_s
                else:
                    try:
                        builder.add(item)
                    except Exception as exc:  # an event no adapter should yield
                        return exc
                    deadline = clock.monotonic() + idle_s
                cut = _control_cut(agent)
                if cut is not None:
                    return cut
            cut = _control_cut(agent)
            if cut is not None:
                return cut
            remaining = deadline - clock.monotonic()
            if remaining < _TICK_S:
                return ProviderTimeout(
                    f"{agent.model.name}: the stream was silent for {idle_s:g} s "
                    "(limits.stream_idle_timeout_s)"
                )
            await pump.wait(agent.mailbox, remaining)
    finally:
        await pump.close()


def _control_cut(agent: Agent) -> CallResult | None:
    """A pause or cancel that takes effect mid-call, or an ``asap`` steer: cut the call."""
    if agent.poll_controls():
        directive = agent.controls.at("stream")
        if directive is not None:
            return CallResult(kind="cut", directive=directive)
    if agent.controls.steer_now():
        # The next model call carries the guidance (see the loop's call_model_step).
        return CallResult(kind="cut")
    return None


async def _backoff(agent: Agent, delay_s: float) -> CallResult | None:
    """Wait ``delay_s`` before a retry, reading the control lane; a cut ends the wait."""
    clock = agent.clock
    deadline = clock.monotonic() + delay_s
    waiter: asyncio.Task[None] | None = None
    try:
        while True:
            cut = _control_cut(agent)
            if cut is not None:
                return cut
            remaining = deadline - clock.monotonic()
            if remaining < _TICK_S:
                return None
            if waiter is None or waiter.done():
                waiter = asyncio.ensure_future(agent.mailbox.wait_control())
            await asyncio.wait({waiter}, timeout=remaining)
    finally:
        if waiter is not None:
            waiter.cancel()


async def record_response(
    agent: Agent, call_id: CallId, response: ModelResponse, started: float
) -> None:
    """Journal the response and append it to the transcript in one batch.

    An incomplete response (cut by a control) keeps its text but not its tool calls, and one
    with no text at all adds nothing to the transcript: only the call's end is journaled.
    """
    interrupted = not response.complete
    latency_ms = (agent.clock.monotonic() - started) * 1000.0
    # Provider call ids are only unique within one response (when the provider sends them at
    # all; fake models count from 1 again after a restart), but the journal keys side effects
    # on them: each call gets an id of our own, unique in the log, the provider's kept beside.
    provided = () if interrupted else response.tool_calls
    calls = tuple(
        ToolCall(call_id=new_id("call_"), name=_tool_name(c.name), arguments=c.arguments)
        for c in provided
    )
    cost = agent.ctx.prices.cost(
        agent.model.name,
        response.input_tokens,
        response.output_tokens,
        cached_input_tokens=response.cached_input_tokens,
        cache_write_tokens=response.cache_write_tokens,
    )
    completed = ModelCallCompleted(
        session_id=agent.session_id,
        agent_id=agent.agent_id,
        call_id=call_id,
        text=response.text,
        tool_calls=tuple(
            _journaled(ours, theirs) for ours, theirs in zip(calls, provided, strict=True)
        ),
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=cost,
        latency_ms=latency_ms,
        stop_reason=response.stop_reason,
        interrupted=interrupted,
        cached_input_tokens=response.cached_input_tokens,
        cache_write_tokens=response.cache_write_tokens,
    )
    if interrupted and not response.text:
        await agent.emit(completed)
        return
    message = AssistantMessage(text=response.text, tool_calls=calls, interrupted=interrupted)
    await agent.append_transcript(message, completed)


def _tool_name(name: str) -> str:
    return name if _TOOL_NAME.match(name) else INVALID_TOOL_NAME


def _journaled(ours: ToolCall, theirs: ToolCall) -> dict[str, JSON]:
    entry: dict[str, JSON] = {
        "call_id": ours.call_id,
        "provider_call_id": theirs.call_id,
        "name": ours.name,
        "arguments": ours.arguments,
    }
    if ours.name != theirs.name:
        entry["provider_name"] = theirs.name
    return entry

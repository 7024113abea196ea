"""Deterministic fake models for tests, the demo and the benchmarks.

How this works and why:

* :class:`ScriptedModel` plays a fixed script: each :meth:`~ScriptedModel.stream` call
  consumes the next step, a :class:`Reply` (text and/or tool calls, possibly failing
  mid-stream), a :class:`Fail` (raises before any event, exactly where a real adapter
  raises, so the retry policy sees it), a :class:`Stall` (never sends anything) or
  :class:`Raw` events (whatever a careless adapter might pass on).
* :class:`FunctionModel` computes each step from the request, for agents whose behaviour
  depends on their prompt.
* Both stream like a real model: text in chunks of ``chunk_chars`` with
  ``asyncio.sleep(chunk_delay_s)`` between chunks (virtual time under ``looptime``), then
  the tool calls, a usage report and the end. Tool call ids are ``call_1``, ``call_2``, …
  per model, and usage defaults to ``len(text) / 4`` tokens, so runs are reproducible.
* Every request is recorded in ``.requests`` so tests can assert what the model saw, and,
  once :func:`check_requests` is on, held to both providers' transcript rules.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import assert_never, cast

from loomkin.core.chat import AssistantMessage, SystemMessage, ToolResultMessage, UserMessage
from loomkin.core.events.base import JSON
from loomkin.errors import ProviderError
from loomkin.llm.caching import prefix_text, shared_prefix_tokens
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
)

__all__ = [
    "Call",
    "Fail",
    "FunctionModel",
    "Raw",
    "Reply",
    "ScriptStep",
    "ScriptedModel",
    "Stall",
    "check_requests",
    "take_request_problems",
    "user_asker",
    "user_askers",
]


@dataclass(frozen=True, slots=True)
class Call:
    """One tool call in a scripted reply: ``Call("read_file", {"path": "a.py"})``."""

    name: str
    """The tool's name."""
    args: dict[str, JSON] | str = field(default_factory=dict)
    """The arguments: a dict (sent as JSON) or raw text (sent as-is, possibly invalid JSON)."""
    call_id: str | None = None
    """The provider's id for the call (``None``: ``call_<n>``); may be empty or repeated,
    as a misbehaving provider's may."""

    def arguments_text(self) -> str:
        """Return the arguments as the raw text the model would stream."""
        if isinstance(self.args, str):
            return self.args
        return json.dumps(self.args, separators=(",", ":"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """A scripted answer."""

    text: str = ""
    tool_calls: Sequence[Call] = ()
    input_tokens: int | None = None
    """Reported input tokens (``None``: estimated as the request's characters / 4)."""
    output_tokens: int | None = None
    """Reported output tokens (``None``: estimated as the reply's characters / 4)."""
    stop_reason: str | None = None
    """``None``: ``"tool_calls"`` if there are calls, else ``"stop"``."""
    fail_after: Exception | None = None
    """Raised mid-stream, after the text and the tool calls (before usage and the end)."""


@dataclass(frozen=True, slots=True)
class Fail:
    """A scripted failure: the call raises ``error`` before streaming anything."""

    error: Exception
    """Usually a :class:`~loomkin.errors.ProviderError` (where a real adapter raises one,
    so the retry policy sees it); any other exception plays a broken model."""


@dataclass(frozen=True, slots=True)
class Stall:
    """A stream that never sends anything (a provider that sends only keep-alives)."""


@dataclass(frozen=True, slots=True)
class Raw:
    """Stream these events as they are, unchecked (an exception in them is raised there).

    For playing an adapter that passes on whatever a server sent, wrong types included.
    """

    events: Sequence[object]
    """Stream events (possibly with fields of the wrong type) and exceptions to raise."""


ScriptStep = Reply | Fail | Stall | Raw

_checking = False
_problems: list[str] = []


def check_requests(enabled: bool) -> None:
    """Switch on (or off) checking every request a fake model receives.

    When on, each request is held to OpenAI's and Anthropic's transcript rules
    (:mod:`loomkin.testing.transcripts`); the problems are collected, not raised, because a
    raise inside the model would only be a failed model call to the agent. Read them with
    :func:`take_request_problems`. The test suite switches this on for every test.
    """
    global _checking
    _checking = enabled
    _problems.clear()


def take_request_problems() -> list[str]:
    """Return (and forget) the problems found in requests since the last call."""
    found = list(_problems)
    _problems.clear()
    return found


class _FakeModel:
    """Shared streaming of fake replies (chunking, delays, ids, usage)."""

    def __init__(
        self, *, name: str, chunk_chars: int | None, chunk_delay_s: float, latency_s: float
    ) -> None:
        if chunk_chars is not None and chunk_chars < 1:
            raise ValueError(f"chunk_chars must be at least 1, got {chunk_chars!r}")
        self._name = name
        self._chunk_chars = chunk_chars
        self._chunk_delay_s = chunk_delay_s
        self._latency_s = latency_s
        self._next_call = 0
        self._cached: dict[str, str] = {}
        """The last request text per cache key: the prompt cache this fake simulates."""
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""

    @property
    def name(self) -> str:
        return self._name

    async def _play(self, request: ModelRequest, step: ScriptStep) -> AsyncIterator[StreamEvent]:
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        match step:
            case Fail(error=error):
                raise error
            case Reply():
                async for event in self._play_reply(request, step):
                    yield event
            case Stall():
                await asyncio.Event().wait()
            case Raw(events=events):
                for item in events:
                    if isinstance(item, Exception):
                        raise item
                    yield cast("StreamEvent", item)  # unchecked on purpose
            case _:
                assert_never(step)

    def _record(self, request: ModelRequest) -> None:
        self.requests.append(request)
        if _checking:
            from loomkin.testing.transcripts import request_problems

            number = len(self.requests)
            _problems.extend(
                f"{self._name} request {number}: {p}" for p in request_problems(request)
            )

    async def _play_reply(self, request: ModelRequest, reply: Reply) -> AsyncIterator[StreamEvent]:
        for i, chunk in enumerate(self._chunks(reply.text)):
            if i > 0 and self._chunk_delay_s > 0:
                await asyncio.sleep(self._chunk_delay_s)
            yield TextDelta(text=chunk)
        out_chars = len(reply.text)
        for index, call in enumerate(reply.tool_calls):
            self._next_call += 1
            arguments = call.arguments_text()
            out_chars += len(call.name) + len(arguments)
            yield ToolCallDelta(
                index=index,
                call_id=f"call_{self._next_call}" if call.call_id is None else call.call_id,
                name=call.name,
                arguments_delta=arguments,
            )
        if reply.fail_after is not None:
            raise reply.fail_after
        input_tokens = _or_estimate(reply.input_tokens, _request_chars(request))
        yield UsageReport(
            input_tokens=input_tokens,
            output_tokens=_or_estimate(reply.output_tokens, out_chars),
            cached_input_tokens=min(input_tokens, self._cache(request)),
        )
        default_stop = "tool_calls" if reply.tool_calls else "stop"
        yield StreamEnd(stop_reason=reply.stop_reason or default_stop)

    def _cache(self, request: ModelRequest) -> int:
        """Simulate a provider's prompt cache: the prefix shared with the key's last request.

        Only requests with a ``cache_key`` (the agent loop's) are cached, as a provider
        caches one agent's calls, so tests that build requests by hand see no cache.
        """
        if request.cache_key is None:
            return 0
        text = prefix_text(request)
        cached = shared_prefix_tokens(self._cached.get(request.cache_key), text)
        self._cached[request.cache_key] = text
        return cached

    def _chunks(self, text: str) -> list[str]:
        if not text:
            return []
        size = self._chunk_chars or len(text)
        return [text[i : i + size] for i in range(0, len(text), size)]


class ScriptedModel(_FakeModel):
    """A model that plays a fixed script, one step per call.

    Args:
        script: The steps, consumed in order, one per :meth:`stream` call.
        name: The model's ``provider:model`` name.
        chunk_chars: Stream text in chunks of this many characters (``None``: one chunk).
        chunk_delay_s: Sleep between text chunks (``asyncio.sleep``, virtual in tests).
        latency_s: Sleep before the first event of every call.
    """

    def __init__(
        self,
        script: Sequence[ScriptStep],
        *,
        name: str = "scripted:demo",
        chunk_chars: int | None = None,
        chunk_delay_s: float = 0.0,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(
            name=name, chunk_chars=chunk_chars, chunk_delay_s=chunk_delay_s, latency_s=latency_s
        )
        self._script = list(script)
        self._position = 0

    @property
    def remaining(self) -> int:
        """How many steps have not been played yet."""
        return len(self._script) - self._position

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self._record(request)
        if self._position >= len(self._script):
            raise ProviderError(
                f"scripted model {self.name!r} ran out of script: call {self._position + 1} "
                f"but the script has only {len(self._script)} step(s)"
            )
        step = self._script[self._position]
        self._position += 1
        async for event in self._play(request, step):
            yield event


StepFunction = Callable[[ModelRequest], ScriptStep | Awaitable[ScriptStep]]
"""Computes a :class:`Reply` (or :class:`Fail`) from a request; may be async."""


class FunctionModel(_FakeModel):
    """A model whose answer is computed from the request by ``fn``.

    Args:
        fn: Returns the step for a request (sync or async); may also raise.
        name: The model's ``provider:model`` name.
        chunk_chars: Stream text in chunks of this many characters (``None``: one chunk).
        chunk_delay_s: Sleep between text chunks (``asyncio.sleep``, virtual in tests).
        latency_s: Sleep before the first event of every call.
    """

    def __init__(
        self,
        fn: StepFunction,
        *,
        name: str = "function:test",
        chunk_chars: int | None = None,
        chunk_delay_s: float = 0.0,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(
            name=name, chunk_chars=chunk_chars, chunk_delay_s=chunk_delay_s, latency_s=latency_s
        )
        self._fn = fn

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        self._record(request)
        result = self._fn(request)
        step = result if isinstance(result, Reply | Fail | Stall | Raw) else await result
        async for event in self._play(request, step):
            yield event


def _or_estimate(given: int | None, chars: int) -> int:
    if given is not None:
        return given
    return max(1, math.ceil(chars / 4)) if chars else 0


def _request_chars(request: ModelRequest) -> int:
    total = 0
    for message in request.messages:
        match message:
            case SystemMessage(text=text) | UserMessage(text=text):
                total += len(text)
            case AssistantMessage(text=text, tool_calls=calls):
                total += len(text) + sum(len(c.name) + len(c.arguments) for c in calls)
            case ToolResultMessage(content=content):
                total += len(content)
            case _:
                assert_never(message)
    for tool in request.tools:
        total += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return total


def user_asker(question: str) -> StepFunction:
    """An agent's part that asks the user ``question`` once, then says what came back.

    Its first turn calls ``ask_question(to="user")``; while the question is open it says it
    waits; once the answer (or the expiry notice) arrives as ``[Answer from ...]`` it repeats
    that message's last line. With no user message at all it has nothing to do.
    """

    def ask(request: ModelRequest) -> Reply:
        texts = [m.text for m in request.messages if isinstance(m, UserMessage)]
        replies = [t for t in texts if t.startswith("[Answer from")]
        if replies:
            return Reply(text="Noted: " + replies[-1].splitlines()[-1])
        if any(isinstance(m, ToolResultMessage) for m in request.messages):
            return Reply(text="Waiting for the user.")
        if not texts:
            return Reply(text="Nothing to do.")
        return Reply(tool_calls=[Call("ask_question", {"to": "user", "question": question})])

    return ask


def user_askers(question: str) -> Callable[[object, str], FunctionModel]:
    """A model factory: every agent gets its own :func:`user_asker` model, ``scripted:<name>``."""

    def factory(_role: object, name: str) -> FunctionModel:
        return FunctionModel(user_asker(question), name=f"scripted:{name}")

    return factory

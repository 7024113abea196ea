"""The provider-neutral model interface: requests, stream events, responses.

How this works and why:

* A :class:`ModelRequest` is the whole input of one model call: the transcript
  (:mod:`loomkin.core.chat` messages, system prompts included), the tool schemas and the
  sampling knobs. Adapters translate it to each provider's wire format; :meth:`to_json`
  gives the exact request for the journal.
* :meth:`Model.stream` is an async generator of :data:`StreamEvent` values: text deltas,
  tool-call deltas (grouped by ``index``), one usage report and a final :class:`StreamEnd`.
  The caller may stop iterating at any point (an ``asap`` pause abandons the stream);
  closing the generator closes the HTTP stream underneath.
* :class:`ResponseBuilder` folds the events into a :class:`ModelResponse`. ``partial()``
  returns what streamed so far, for a stream that was interrupted. Lone surrogates in what
  the model sent are replaced (:func:`valid_unicode`), so a response can always be sent back.
* Adapters do not retry; :mod:`loomkin.llm.retry` wraps any model with the one retry policy.
  The wrapper announces each retry in the stream itself with a :class:`RetryNotice` (not
  part of the answer; the builder skips it), so whoever consumes one call sees that call's
  retries, in order, without a callback registered on a model other agents share.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, assert_never, runtime_checkable

from loomkin.core.chat import AssistantMessage, ChatMessage, ToolCall, message_to_json
from loomkin.core.events.base import JSON
from loomkin.errors import ProviderError
from loomkin.ids import uuid7

__all__ = [
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ResponseBuilder",
    "RetryNotice",
    "StopReason",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "ToolSchema",
    "UsageReport",
    "complete",
    "valid_unicode",
]

StopReason = str
"""Why the model stopped. Adapters normalise the common cases to ``"stop"`` (a final
answer), ``"tool_calls"``, ``"length"`` (hit ``max_tokens``) and ``"content_filter"``;
anything else is passed through as the provider spelled it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSchema:
    """A tool as the model sees it."""

    name: str
    """The name the model calls the tool by."""
    description: str
    """What the tool does, for the model."""
    parameters: dict[str, JSON]
    """JSON Schema (an ``object`` schema) of the tool's arguments."""

    def to_json(self) -> dict[str, JSON]:
        """Return the schema as a JSON object."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """Everything one model call receives."""

    messages: tuple[ChatMessage, ...]
    """The transcript; system prompts are :class:`~loomkin.core.chat.SystemMessage` entries."""
    tools: tuple[ToolSchema, ...] = ()
    """Tools the model may call."""
    max_tokens: int | None = None
    """Cap on output tokens (``None``: the adapter's default)."""
    temperature: float | None = None
    """Sampling temperature (``None``: the provider's default)."""
    cache_key: str | None = None
    """Groups requests that share a prefix (one agent's calls), for providers whose prompt
    cache routes by a key (OpenAI's ``prompt_cache_key``); ``None``: none is sent."""

    def to_json(self) -> dict[str, JSON]:
        """Return the exact request as a JSON object, for journaling."""
        out: dict[str, JSON] = {
            "messages": [message_to_json(m) for m in self.messages],
            "tools": [t.to_json() for t in self.tools],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if self.cache_key is not None:
            out["cache_key"] = self.cache_key
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    """A piece of the answer's text."""

    kind: Literal["text"] = "text"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta:
    """A piece of one tool call; deltas with the same ``index`` belong to the same call."""

    kind: Literal["tool_call"] = "tool_call"
    index: int
    """Position of the call among this response's tool calls (0-based)."""
    call_id: str | None = None
    """The provider's call id, usually only on the first delta of a call."""
    name: str | None = None
    """The tool's name, usually only on the first delta of a call."""
    arguments_delta: str = ""
    """More of the raw JSON arguments text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageReport:
    """Token counts of the whole call so far (cumulative; the last report wins).

    ``input_tokens`` counts every input token; of those, ``cached_input_tokens`` were read
    from the provider's prompt cache and ``cache_write_tokens`` were written to it (billed
    at each provider's cache prices, :mod:`loomkin.llm.pricing`). The rest is uncached.
    """

    kind: Literal["usage"] = "usage"
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnd:
    """The model finished; always the last event of a complete stream."""

    kind: Literal["end"] = "end"
    stop_reason: StopReason


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryNotice:
    """The call failed transiently before any answer and will be tried again after a wait.

    Only :class:`~loomkin.llm.retry.RetryingModel` yields it (adapters never retry), just
    before it sleeps; closing the stream at this point cancels the retry. It carries no part
    of the answer: :class:`ResponseBuilder` skips it. The agent loop journals it, because
    every retry is an event (SPEC §3.13).
    """

    kind: Literal["retry"] = "retry"
    attempt: int
    """Which retry this is, counting from 1 (attempt 1 is the second try of the call)."""
    delay_s: float
    """Seconds the wrapper waits before the retry (backoff, or the server's Retry-After)."""
    error: ProviderError
    """The transient failure that caused it; ``str(error)`` is the message to record."""


StreamEvent = TextDelta | ToolCallDelta | UsageReport | StreamEnd | RetryNotice


@runtime_checkable
class Model(Protocol):
    """A chat model that streams its answer."""

    @property
    def name(self) -> str:
        """``"provider:model"``, e.g. ``"openai:gpt-4.1"``."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream the answer to ``request``.

        Implemented as an async generator. Errors before the first event are raised as
        :class:`~loomkin.errors.ProviderError` subclasses (transient ones may be retried);
        an error after the first event (a :class:`RetryNotice` included) is raised as-is
        and is never retried again. Closing the generator early (``aclose()``) releases the
        connection.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """A model's answer, whole or partial."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    """Calls in the order the model made them; ``arguments`` is raw text (may be invalid)."""
    input_tokens: int
    """Every input token, cached or not."""
    output_tokens: int
    stop_reason: StopReason
    """``""`` when the stream did not finish."""
    complete: bool
    """False when the stream was interrupted before :class:`StreamEnd`."""
    cached_input_tokens: int = 0
    """Input tokens read from the provider's prompt cache (part of ``input_tokens``)."""
    cache_write_tokens: int = 0
    """Input tokens written to the provider's prompt cache (part of ``input_tokens``)."""

    def to_message(self) -> AssistantMessage:
        """Return the answer as a transcript message (``interrupted`` when incomplete)."""
        return AssistantMessage(
            text=self.text, tool_calls=self.tool_calls, interrupted=not self.complete
        )

    def to_json(self) -> dict[str, JSON]:
        """Return the response as a JSON object, for journaling."""
        return {
            "text": self.text,
            "tool_calls": [
                {"call_id": c.call_id, "name": c.name, "arguments": c.arguments}
                for c in self.tool_calls
            ],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "stop_reason": self.stop_reason,
            "complete": self.complete,
        }


@dataclass(slots=True)
class _PendingCall:
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ResponseBuilder:
    """Accumulates stream events into a :class:`ModelResponse`.

    A call whose provider gave no id gets ``call_<uuid7>`` the first time it is built;
    the id is kept, so ``partial()`` and ``build()`` agree.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self._input_tokens = 0
        self._output_tokens = 0
        self._cached_tokens = 0
        self._cache_write_tokens = 0
        self._stop_reason: StopReason | None = None

    @property
    def finished(self) -> bool:
        """True once :class:`StreamEnd` was added."""
        return self._stop_reason is not None

    def text_so_far(self, tail: int = 400) -> str:
        """The last ``tail`` characters of the text streamed so far (for a live view)."""
        text = "".join(self._text)
        return text[-tail:]

    def add(self, event: StreamEvent) -> None:
        """Fold one event into the response.

        Raises:
            TypeError: A field of ``event`` has the wrong type (an adapter passed on what a
                server sent without checking it); nothing of ``event`` is kept.
        """
        match event:
            case TextDelta(text=text):
                self._text.append(_typed(text, str, "text"))
            case ToolCallDelta():
                index = _typed(event.index, int, "tool call index")
                call_id = _typed_or_none(event.call_id, "tool call id")
                name = _typed_or_none(event.name, "tool name")
                arguments = _typed(event.arguments_delta, str, "tool arguments")
                call = self._calls.setdefault(index, _PendingCall())
                if call_id and call.call_id is None:
                    call.call_id = call_id
                if name:
                    call.name = name
                call.arguments.append(arguments)
            case UsageReport(input_tokens=input_tokens, output_tokens=output_tokens):
                counts = (
                    _count(input_tokens, "input tokens"),
                    _count(output_tokens, "output tokens"),
                    _count(event.cached_input_tokens, "cached input tokens"),
                    _count(event.cache_write_tokens, "cache write tokens"),
                )
                self._input_tokens, self._output_tokens = counts[0], counts[1]
                # What a server claims was cached can never exceed what it was sent.
                self._cached_tokens = min(counts[2], counts[0])
                self._cache_write_tokens = min(counts[3], counts[0] - self._cached_tokens)
            case StreamEnd(stop_reason=stop_reason):
                self._stop_reason = _typed(stop_reason, str, "stop reason")
            case RetryNotice():
                pass  # announces a retry; the answer comes from the next attempt's events
            case _:
                assert_never(event)

    def partial(self) -> ModelResponse:
        """Return what has streamed so far (``complete`` only if the stream ended)."""
        calls: list[ToolCall] = []
        for index in sorted(self._calls):
            pending = self._calls[index]
            if pending.call_id is None:
                pending.call_id = f"call_{uuid7()}"
            calls.append(
                ToolCall(
                    call_id=valid_unicode(pending.call_id),
                    name=valid_unicode(pending.name),
                    arguments=valid_unicode("".join(pending.arguments)),
                )
            )
        return ModelResponse(
            text=valid_unicode("".join(self._text)),
            tool_calls=tuple(calls),
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            stop_reason=self._stop_reason or "",
            complete=self._stop_reason is not None,
            cached_input_tokens=self._cached_tokens,
            cache_write_tokens=self._cache_write_tokens,
        )

    def build(self) -> ModelResponse:
        """Return the response; same as :meth:`partial` (``complete`` tells them apart)."""
        return self.partial()


_T = TypeVar("_T")


def _typed(value: object, kind: type[_T], what: str) -> _T:
    # bool is an int to Python, never to JSON
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(
            f"stream event field {what!r} is {type(value).__name__}, not {kind.__name__}"
        )
    return value


def _typed_or_none(value: object, what: str) -> str | None:
    return None if value is None else _typed(value, str, what)


def _count(value: object, what: str) -> int:
    number = _typed(value, int, what)
    if number < 0:
        raise TypeError(f"stream event field {what!r} is negative ({number})")
    return number


_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    r"""Return ``text`` with lone surrogates replaced by U+FFFD.

    A JSON escape such as ``"\ud800"`` decodes to a lone surrogate, which UTF-8 cannot
    encode: kept in a transcript, it would make every later request fail to serialise.
    """
    if text.isascii():
        return text
    return _SURROGATES.sub("\ufffd", text)


async def complete(model: Model, request: ModelRequest) -> ModelResponse:
    """Run ``request`` on ``model`` to the end and return the whole response."""
    builder = ResponseBuilder()
    stream = model.stream(request)
    try:
        async for event in stream:
            builder.add(event)
    finally:
        await _aclose(stream)
    return builder.build()


async def _aclose(stream: AsyncIterator[StreamEvent]) -> None:
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()

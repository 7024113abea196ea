"""Adapter for the OpenAI chat-completions API and every server that speaks it.

How this works and why:

* One :class:`openai.AsyncOpenAI` client per model, with the SDK's retries off
  (``max_retries=0``): :mod:`loomkin.llm.retry` is the one retry policy.
* Requests stream (``stream=True``). Text deltas, tool-call deltas (already split by
  ``index`` on the wire) and the usage chunk map one-to-one to stream events.
* An :class:`~loomkin.llm.profiles.EndpointProfile` carries the servers' quirks: llama.cpp
  rejects ``content: null`` beside tool calls, local servers know ``max_tokens`` but not
  ``max_completion_tokens``, o-series models reject ``temperature``. llama-cpp-python's
  server ignores tools without ``tool_choice``, cannot stream an answer that may call a tool
  (such requests are made whole and replayed as the same stream events) and drops ``tool``
  messages (results are sent as ``user`` messages).
* SDK errors become :class:`~loomkin.errors.ProviderError` subclasses raised ``from`` the
  SDK error (so :func:`~loomkin.llm.retry.retry_after` can read the headers). So does
  whatever else breaks a stream (a server-sent event that is not JSON, bytes that are not
  UTF-8, a connection cut mid-stream, a chunk field of the wrong type): a transient
  :class:`~loomkin.errors.ProviderUnavailable`, never a raw exception. The stream is closed
  in ``finally``, so abandoning the generator releases the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, assert_never

import openai
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolResultMessage,
    UserMessage,
)
from loomkin.errors import ProviderError, ProviderUnavailable
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)
from loomkin.llm.profiles import OPENAI_URL, EndpointProfile, profile_for, same_endpoint
from loomkin.llm.providers._depth import WireTooDeep, guard_depth
from loomkin.llm.providers._errors import (
    broken_stream,
    connection_error,
    status_error,
    timeout_error,
)
from loomkin.llm.toolnames import WireNames

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types.chat import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessageParam,
        ChatCompletionMessageToolCallParam,
        ChatCompletionStreamOptionsParam,
        ChatCompletionToolParam,
    )

    class _Params(TypedDict):
        model: str
        messages: list[ChatCompletionMessageParam]
        tools: list[ChatCompletionToolParam] | openai.Omit
        tool_choice: Literal["auto"] | openai.Omit
        parallel_tool_calls: bool | openai.Omit
        max_completion_tokens: int | openai.Omit
        max_tokens: int | openai.Omit
        temperature: float | openai.Omit
        prompt_cache_key: str | openai.Omit


__all__ = ["OpenAIModel", "to_openai_messages", "to_openai_tools"]

_FINISH_REASONS = {"function_call": "tool_calls"}
"""Legacy spellings normalised to Loomkin's stop reasons; the rest pass through."""


class OpenAIModel:
    """A chat model behind the OpenAI chat-completions API (or a compatible server).

    Args:
        model: The model's name on the server (``"gpt-4.1"``, ``"llama3.1:8b"``).
        api_key: The API key (local servers accept any string). ``None``: ``OPENAI_API_KEY``
            for OpenAI's own endpoint, a placeholder for any other (never OpenAI's key).
        base_url: The server's ``…/v1`` URL (``None``: official OpenAI; the SDK's
            ``OPENAI_BASE_URL`` is not read, so OpenAI's key cannot be sent elsewhere).
        key_env: The variable the key came from, named in "key rejected" errors.
        profile: The endpoint's quirks (``None``: :func:`profile_for` picks them).
        timeout: Seconds to wait for the server (connect, and between streamed chunks).
        provider: The ``provider`` half of :attr:`name` (``"ollama"`` for an alias).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        profile: EndpointProfile | None = None,
        timeout: float = 120.0,
        provider: str = "openai",
        key_env: str | None = None,
    ) -> None:
        self.model = model
        self.profile = profile or profile_for(base_url, model)
        self.timeout = timeout
        self._name = f"{provider}:{model}"
        url = base_url or OPENAI_URL
        home = same_endpoint(url, OPENAI_URL)
        if api_key is None and not home:
            # The SDK would read OPENAI_API_KEY by itself and send it to this other endpoint.
            api_key = "loomkin-local"
        elif api_key is None:
            key_env = key_env or "OPENAI_API_KEY"  # the SDK reads it, for its own endpoint
        self._key_env = key_env
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=url,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"response": [guard_depth]}),
        )

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        # Tool names the API refuses (an MCP server's "git.status") go out under wire names.
        names = WireNames.for_request(request)
        async for event in self._stream(names.outgoing(request)):
            yield names.incoming(event)

    async def _stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        if request.tools and not self.profile.streams_tool_calls:
            try:
                completion = await self._complete(request)
                events = _completion_events(completion)
            except openai.OpenAIError as error:
                raise self._translate(error) from error
            except Exception as error:  # a body the SDK could not read, a field mistyped
                raise broken_stream(self.name, error) from error
            for event in events:
                yield event
            return
        try:
            stream = await self._open(request)
        except openai.OpenAIError as error:
            raise self._translate(error) from error
        except WireTooDeep as error:  # an error body nested past any real one
            raise broken_stream(self.name, error) from error
        finish: str | None = None
        saw_tool_calls = False
        try:
            async for chunk in stream:
                events, chunk_finish = _chunk_events(chunk)
                for event in events:
                    saw_tool_calls = saw_tool_calls or isinstance(event, ToolCallDelta)
                    yield event
                finish = chunk_finish or finish
        except openai.OpenAIError as error:
            raise self._translate(error, streaming=True) from error
        except Exception as error:
            # The SDK raises what it meets on the wire as-is: JSONDecodeError for a broken
            # event, UnicodeDecodeError for bytes that are not UTF-8, httpx errors for a
            # connection cut mid-stream, and _chunk_events refuses fields of the wrong type.
            raise broken_stream(self.name, error) from error
        finally:
            await stream.close()
        if finish is None:
            raise ProviderUnavailable(f"{self.name}: the stream ended before the model finished")
        yield StreamEnd(stop_reason=_stop_reason(finish, saw_tool_calls=saw_tool_calls))

    async def _open(self, request: ModelRequest) -> openai.AsyncStream[ChatCompletionChunk]:
        usage: ChatCompletionStreamOptionsParam | openai.Omit = (
            {"include_usage": True} if self.profile.supports_stream_usage else openai.omit
        )
        return await self._client.chat.completions.create(
            **self._params(request), stream=True, stream_options=usage
        )

    async def _complete(self, request: ModelRequest) -> ChatCompletion:
        return await self._client.chat.completions.create(**self._params(request), stream=False)

    def _params(self, request: ModelRequest) -> _Params:
        profile = self.profile
        tools = to_openai_tools(request.tools)
        max_tokens = request.max_tokens if request.max_tokens is not None else openai.omit
        use_completion_tokens = profile.max_tokens_param == "max_completion_tokens"
        temperature = request.temperature
        return {
            "model": self.model,
            "messages": to_openai_messages(request.messages, profile),
            "tools": tools or openai.omit,
            "tool_choice": "auto" if tools and profile.sends_tool_choice_auto else openai.omit,
            "parallel_tool_calls": (
                True if tools and profile.supports_parallel_tool_calls else openai.omit
            ),
            "max_completion_tokens": max_tokens if use_completion_tokens else openai.omit,
            "max_tokens": openai.omit if use_completion_tokens else max_tokens,
            "temperature": (
                temperature
                if temperature is not None and profile.supports_temperature
                else openai.omit
            ),
            "prompt_cache_key": (
                request.cache_key
                if request.cache_key and profile.sends_prompt_cache_key
                else openai.omit
            ),
        }

    def _translate(self, error: openai.OpenAIError, *, streaming: bool = False) -> ProviderError:
        if isinstance(error, openai.APITimeoutError):
            return timeout_error(self.name, self.timeout)
        if isinstance(error, openai.APIConnectionError):
            return connection_error(self.name, str(self._client.base_url))
        if isinstance(error, openai.APIStatusError):
            return status_error(self.name, error.status_code, _detail(error), key_env=self._key_env)
        if streaming:  # an error event in the stream ("overloaded"...): worth another try
            return broken_stream(self.name, error)
        return ProviderError(f"{self.name}: {error}")


def to_openai_messages(
    messages: tuple[ChatMessage, ...], profile: EndpointProfile
) -> list[ChatCompletionMessageParam]:
    """Return the transcript in chat-completions form."""
    wire: list[ChatCompletionMessageParam] = []
    for message in messages:
        match message:
            case SystemMessage(text=text):
                wire.append({"role": "system", "content": text})
            case UserMessage(text=text):
                wire.append({"role": "user", "content": text})
            case AssistantMessage():
                wire.append(_assistant(message, profile))
            case ToolResultMessage(call_id=call_id, name=name, content=content):
                if profile.tool_results_as_user:
                    text = f"[Result of {name} call {call_id}]\n{content}"
                    wire.append({"role": "user", "content": text})
                else:
                    wire.append({"role": "tool", "tool_call_id": call_id, "content": content})
            case _:
                assert_never(message)
    return wire


def _assistant(message: AssistantMessage, profile: EndpointProfile) -> ChatCompletionMessageParam:
    if not message.tool_calls:
        return {"role": "assistant", "content": message.text}
    calls: list[ChatCompletionMessageToolCallParam] = [
        {
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in message.tool_calls
    ]
    null_ok = profile.assistant_content_null_with_tool_calls_ok
    content = message.text or (None if null_ok else "")
    return {"role": "assistant", "content": content, "tool_calls": calls}


def to_openai_tools(tools: tuple[ToolSchema, ...]) -> list[ChatCompletionToolParam]:
    """Return the tool schemas in chat-completions form."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": dict[str, object](tool.parameters),
            },
        }
        for tool in tools
    ]


def _chunk_events(chunk: ChatCompletionChunk) -> tuple[list[StreamEvent], str | None]:
    """Return a chunk's events and its finish reason, checking every field read.

    The SDK builds chunks without validating them, so a field can hold any JSON value a
    server sent; one of the wrong type raises :class:`TypeError` naming it.
    """
    events: list[StreamEvent] = []
    finish: str | None = None
    for choice in _list(chunk.choices, "choices"):
        delta = choice.delta
        content = _optional(delta.content, str, "delta.content")
        if content:
            events.append(TextDelta(text=content))
        for call in _list(delta.tool_calls or [], "delta.tool_calls"):
            function = call.function
            name = _optional(function.name, str, "function.name") if function else None
            arguments = (
                _optional(function.arguments, str, "function.arguments") if function else None
            )
            events.append(
                ToolCallDelta(
                    index=_index(call.index),
                    call_id=_optional(call.id, str, "tool_calls.id") or None,
                    name=name or None,
                    arguments_delta=arguments or "",
                )
            )
        finish = _optional(choice.finish_reason, str, "finish_reason") or finish
    if chunk.usage is not None:
        events.append(
            UsageReport(
                input_tokens=_tokens(chunk.usage.prompt_tokens, "usage.prompt_tokens"),
                output_tokens=_tokens(chunk.usage.completion_tokens, "usage.completion_tokens"),
                cached_input_tokens=_cached(chunk.usage.prompt_tokens_details),
            )
        )
    return events, finish


_V = TypeVar("_V")


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"chunk field {what!r} is {type(value).__name__}, not a list")
    return value


def _optional(value: object, kind: type[_V], what: str) -> _V | None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"chunk field {what!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _index(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 10_000:
        raise TypeError(f"chunk field 'tool_calls.index' is {value!r}, not a small integer")
    return value


def _tokens(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"chunk field {what!r} is {value!r}, not a token count")
    return value


def _cached(details: object) -> int:
    """Prompt tokens read from OpenAI's cache (``prompt_tokens_details.cached_tokens``)."""
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return 0 if cached is None else _tokens(cached, "usage.prompt_tokens_details.cached_tokens")


def _completion_events(completion: ChatCompletion) -> list[StreamEvent]:
    """Replay a whole (non-streamed) completion as the events its stream would have had."""
    events: list[StreamEvent] = []
    finish = "stop"
    for choice in completion.choices:
        message = choice.message
        if message.content:
            events.append(TextDelta(text=message.content))
        for index, call in enumerate(message.tool_calls or ()):
            if isinstance(call, ChatCompletionMessageFunctionToolCall):
                function = call.function
                events.append(
                    ToolCallDelta(
                        index=index,
                        call_id=call.id,
                        name=function.name,
                        arguments_delta=function.arguments,
                    )
                )
        finish = choice.finish_reason
    usage = completion.usage
    if usage is not None:
        events.append(
            UsageReport(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cached_input_tokens=_cached(usage.prompt_tokens_details),
            )
        )
    saw_tool_calls = any(isinstance(e, ToolCallDelta) for e in events)
    events.append(StreamEnd(stop_reason=_stop_reason(finish, saw_tool_calls=saw_tool_calls)))
    return events


def _stop_reason(finish: str, *, saw_tool_calls: bool) -> str:
    reason = _FINISH_REASONS.get(finish, finish)
    # Some local servers (Ollama) say "stop" after a tool call; the calls are what matters.
    if saw_tool_calls and reason == "stop":
        return "tool_calls"
    return reason


def _detail(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    return error.message

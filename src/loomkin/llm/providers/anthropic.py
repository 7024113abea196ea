"""Adapter for the Anthropic Messages API.

How this works and why:

* One :class:`anthropic.AsyncAnthropic` client per model with the SDK's retries off
  (``max_retries=0``): :mod:`loomkin.llm.retry` is the one retry policy.
* Leading system messages become the ``system`` parameter; a system notice later in the
  transcript goes in as user text (the API has no mid-conversation system role).
  Consecutive messages of one role are merged, so all tool results answering one turn sit
  in one user message, as the API requires.
* The stream is ``messages.create(stream=True)``: ``content_block_start`` opens a text or
  ``tool_use`` block, ``input_json_delta`` streams a tool's arguments, ``message_start`` /
  ``message_delta`` carry usage and the stop reason. Content-block indexes count text
  blocks too, so tool calls are renumbered 0, 1, … for :class:`ToolCallDelta`.
* Prompt caching: :func:`~loomkin.llm.caching.mark_anthropic_breakpoints` sets the cache
  breakpoints (tools, system, the previous turn, the newest message); the usage's cache
  reads and writes are reported apart (:class:`UsageReport`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, assert_never, cast

import anthropic
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
)

from loomkin.core.arguments import ArgumentsError, decode_arguments
from loomkin.core.chat import (
    AssistantMessage,
    ChatMessage,
    SystemMessage,
    ToolResultMessage,
    UserMessage,
)
from loomkin.errors import ProviderError, ProviderUnavailable
from loomkin.llm.caching import mark_anthropic_breakpoints
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
)
from loomkin.llm.profiles import ANTHROPIC_URL, same_endpoint
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

    from anthropic.types import (
        ContentBlockParam,
        MessageParam,
        RawMessageStreamEvent,
        TextBlockParam,
        ToolParam,
    )

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicModel", "to_anthropic_messages", "to_anthropic_tools"]

DEFAULT_MAX_TOKENS = 8192
"""Output cap when the request sets none (the API requires one)."""

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}


class AnthropicModel:
    """A Claude model behind the Anthropic Messages API.

    Args:
        model: The model's name (``"claude-sonnet-4-5"``).
        api_key: The API key. ``None``: ``ANTHROPIC_API_KEY`` for Anthropic's own endpoint,
            a placeholder for any other (never Anthropic's key).
        base_url: Another endpoint speaking the same API (``None``: Anthropic's; the SDK's
            ``ANTHROPIC_BASE_URL`` is not read, so Anthropic's key cannot be sent elsewhere).
        key_env: The variable the key came from, named in "key rejected" errors.
        timeout: Seconds to wait for the server (connect, and between streamed chunks).
        default_max_tokens: Output cap when a request sets none.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        key_env: str | None = None,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.default_max_tokens = default_max_tokens
        self._name = f"anthropic:{model}"
        url = base_url or ANTHROPIC_URL
        home = same_endpoint(url, ANTHROPIC_URL)
        if api_key is None and not home:
            # The SDK would read ANTHROPIC_API_KEY by itself and send it to this other endpoint.
            api_key = "loomkin-local"
        elif api_key is None:
            key_env = key_env or "ANTHROPIC_API_KEY"  # the SDK reads it, for its own endpoint
        self._key_env = key_env
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=url,
            timeout=timeout,
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [guard_depth]}),
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
        try:
            stream = await self._open(request)
        except anthropic.AnthropicError as error:
            raise self._translate(error) from error
        except WireTooDeep as error:  # an error body nested past any real one
            raise broken_stream(self.name, error) from error
        state = _StreamState()
        try:
            async for raw in stream:
                for event in state.feed(raw):
                    yield event
        except anthropic.AnthropicError as error:
            raise self._translate(error, streaming=True) from error
        except Exception as error:
            # What the SDK meets on the wire is raised as-is (JSONDecodeError for a broken
            # event, UnicodeDecodeError for bytes that are not UTF-8, httpx errors for a cut
            # connection), and a field of the wrong type breaks the folding: all transient.
            raise broken_stream(self.name, error) from error
        finally:
            await stream.close()
        if state.stop_reason is None:
            raise ProviderUnavailable(f"{self.name}: the stream ended before the model finished")
        yield UsageReport(
            input_tokens=state.input_tokens,
            output_tokens=state.output_tokens,
            cached_input_tokens=state.cache_read_tokens,
            cache_write_tokens=state.cache_write_tokens,
        )
        yield StreamEnd(stop_reason=_STOP_REASONS.get(state.stop_reason, state.stop_reason))

    async def _open(self, request: ModelRequest) -> anthropic.AsyncStream[RawMessageStreamEvent]:
        system, messages = to_anthropic_messages(request.messages)
        tools = to_anthropic_tools(request.tools)
        system_blocks = mark_anthropic_breakpoints(system, tools, messages)
        extra: dict[str, object] = {}
        if request.temperature is not None:
            extra["temperature"] = request.temperature
        return await self._client.messages.create(
            model=self.model,
            max_tokens=request.max_tokens or self.default_max_tokens,
            system=cast("list[TextBlockParam]", system_blocks) or anthropic.omit,
            messages=messages,
            tools=tools or anthropic.omit,
            stream=True,
            extra_body=extra or None,
        )

    def _translate(
        self, error: anthropic.AnthropicError, *, streaming: bool = False
    ) -> ProviderError:
        if isinstance(error, anthropic.APITimeoutError):
            return timeout_error(self.name, self.timeout)
        if isinstance(error, anthropic.APIConnectionError):
            return connection_error(self.name, str(self._client.base_url))
        if isinstance(error, anthropic.APIStatusError) and not (
            streaming and error.status_code < 400
        ):
            return status_error(self.name, error.status_code, _detail(error), key_env=self._key_env)
        if streaming:  # an error event in a 200 stream ("overloaded_error"): worth another try
            return broken_stream(self.name, error)
        return ProviderError(f"{self.name}: {error}")


_FOLDED_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    }
)


@dataclass(slots=True)
class _StreamState:
    """Folds raw stream events; maps content-block indexes to tool-call indexes."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str | None = None
    tool_index: dict[int, int] = field(default_factory=dict)
    """Content-block index → tool-call index."""
    streamed_args: dict[int, bool] = field(default_factory=dict)
    initial_input: dict[int, object] = field(default_factory=dict)

    def feed(self, raw: RawMessageStreamEvent) -> list[StreamEvent]:
        if getattr(raw, "type", None) not in _FOLDED_EVENTS:
            # message_stop, ping, and event types newer than this adapter add nothing (the
            # SDK builds an unknown type as one of the types it knows: go by the name).
            return []
        if isinstance(raw, RawMessageStartEvent):
            usage = raw.message.usage
            self.cache_write_tokens = usage.cache_creation_input_tokens or 0
            self.cache_read_tokens = usage.cache_read_input_tokens or 0
            self.input_tokens = (
                usage.input_tokens + self.cache_write_tokens + self.cache_read_tokens
            )
            self.output_tokens = usage.output_tokens
        elif isinstance(raw, RawContentBlockStartEvent):
            return self._block_start(raw)
        elif isinstance(raw, RawContentBlockDeltaEvent):
            return self._block_delta(raw)
        elif isinstance(raw, RawContentBlockStopEvent):
            return self._block_stop(raw.index)
        elif isinstance(raw, RawMessageDeltaEvent):
            self.stop_reason = raw.delta.stop_reason or self.stop_reason
            self.output_tokens = raw.usage.output_tokens
            if raw.usage.input_tokens is not None:
                cached = self.cache_read_tokens + self.cache_write_tokens
                self.input_tokens = max(self.input_tokens, raw.usage.input_tokens + cached)
        return []

    def _block_start(self, raw: RawContentBlockStartEvent) -> list[StreamEvent]:
        block = raw.content_block
        if block.type == "text":
            return [TextDelta(text=block.text)] if block.text else []
        if block.type == "tool_use":
            index = len(self.tool_index)
            self.tool_index[raw.index] = index
            self.initial_input[raw.index] = block.input
            return [ToolCallDelta(index=index, call_id=block.id, name=block.name)]
        return []  # thinking and server-tool blocks are not part of the answer

    def _block_delta(self, raw: RawContentBlockDeltaEvent) -> list[StreamEvent]:
        delta = raw.delta
        if delta.type == "text_delta":
            return [TextDelta(text=delta.text)] if delta.text else []
        if delta.type == "input_json_delta" and raw.index in self.tool_index:
            if not delta.partial_json:
                return []
            self.streamed_args[raw.index] = True
            return [
                ToolCallDelta(index=self.tool_index[raw.index], arguments_delta=delta.partial_json)
            ]
        return []

    def _block_stop(self, block_index: int) -> list[StreamEvent]:
        if block_index not in self.tool_index or self.streamed_args.get(block_index):
            return []
        # No input_json_delta at all: the tool takes no arguments (or they came whole).
        arguments = json.dumps(self.initial_input.get(block_index) or {})
        return [ToolCallDelta(index=self.tool_index[block_index], arguments_delta=arguments)]


def to_anthropic_messages(messages: tuple[ChatMessage, ...]) -> tuple[str, list[MessageParam]]:
    """Return ``(system, messages)`` in Messages-API form."""
    system: list[str] = []
    groups: list[tuple[Literal["user", "assistant"], list[ContentBlockParam]]] = []
    for message in messages:
        if isinstance(message, SystemMessage) and not groups:
            system.append(message.text)
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if groups and groups[-1][0] == role:
            groups[-1][1].extend(blocks)
        else:
            groups.append((role, blocks))
    if groups and groups[-1][0] == "assistant":
        _strip_final(groups)
    wire: list[MessageParam] = [
        {"role": "user", "content": blocks}
        if role == "user"
        else {"role": "assistant", "content": blocks}
        for role, blocks in groups
    ]
    return "\n\n".join(s for s in system if s), wire


def _blocks(
    message: ChatMessage,
) -> tuple[Literal["user", "assistant"], list[ContentBlockParam]]:
    match message:
        case SystemMessage(text=text):
            return "user", _text(f"[system notice] {text}" if text else "")
        case UserMessage(text=text):
            return "user", _text(text)
        case AssistantMessage(text=text, tool_calls=calls):
            blocks = _text(text)
            for call in calls:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.call_id,
                        "name": call.name,
                        "input": _tool_input(call.arguments),
                    }
                )
            return "assistant", blocks
        case ToolResultMessage(call_id=call_id, content=content, is_error=is_error):
            result: ContentBlockParam = {
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": content,
                "is_error": is_error,
            }
            return "user", [result]
        case _:
            assert_never(message)


def _text(text: str) -> list[ContentBlockParam]:
    # The API rejects text blocks that are empty or only whitespace.
    return [{"type": "text", "text": text}] if text.strip() else []


def _strip_final(
    groups: list[tuple[Literal["user", "assistant"], list[ContentBlockParam]]],
) -> None:
    """Strip trailing whitespace from a final assistant message (the API refuses it there).

    A transcript ends with the assistant's words when a pause cut its answer short; the
    model is then asked to go on from them.
    """
    blocks = groups[-1][1]
    last = blocks[-1]
    if last["type"] != "text":
        return
    text = last["text"].rstrip()
    if text:
        blocks[-1] = {"type": "text", "text": text}
        return
    blocks.pop()
    if not blocks:
        groups.pop()


def _tool_input(arguments: str) -> dict[str, object]:
    try:
        return decode_arguments(arguments)
    except ArgumentsError:
        # Arguments the API would refuse (not an object, NaN, nested past what its parser
        # takes...): show the model what it sent; the tool result says what was wrong.
        return {"invalid_arguments": arguments}


def to_anthropic_tools(tools: tuple[ToolSchema, ...]) -> list[ToolParam]:
    """Return the tool schemas in Messages-API form."""
    return [
        {
            "name": tool.name,
            "description": tool.description,
            "input_schema": dict[str, object](tool.parameters),
        }
        for tool in tools
    ]


def _detail(error: anthropic.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            message = inner.get("message")
            if isinstance(message, str) and message:
                return message
    return error.message

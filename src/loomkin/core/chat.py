"""Provider-neutral chat messages: what an agent's transcript is made of.

These are the messages the agent loop keeps and the model adapters translate to each
provider's wire format. They convert to and from JSON so the transcript can be journaled
(``TranscriptAppended``) and rebuilt after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON

__all__ = [
    "AssistantMessage",
    "ChatMessage",
    "SystemMessage",
    "ToolCall",
    "ToolResultMessage",
    "UserMessage",
    "message_from_json",
    "message_to_json",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One tool call the model asked for."""

    call_id: str
    """Provider-given id (or one Loomkin made up when the provider gave none); stable."""
    name: str
    arguments: str
    """The raw JSON text of the arguments, exactly as the model produced it (may be invalid)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemMessage:
    """Instructions or a system notice (a notice is readable text, never an object dump)."""

    kind: Literal["system"] = "system"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage:
    """Input to the agent: the user's words, a peer's message, or user guidance (steering)."""

    kind: Literal["user"] = "user"
    text: str
    source: Literal["user", "peer", "system", "guidance"] = "user"


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantMessage:
    """What the model answered: text and/or tool calls."""

    kind: Literal["assistant"] = "assistant"
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = field(default=())
    interrupted: bool = False
    """True when an asap pause abandoned the stream; ``text`` is what had streamed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultMessage:
    """The result of one tool call, matched to it by ``call_id``."""

    kind: Literal["tool"] = "tool"
    call_id: str
    name: str
    content: str
    is_error: bool = False


ChatMessage = SystemMessage | UserMessage | AssistantMessage | ToolResultMessage


def message_to_json(message: ChatMessage) -> dict[str, JSON]:
    """Return ``message`` as a JSON object."""
    match message:
        case SystemMessage(text=text):
            return {"kind": "system", "text": text}
        case UserMessage(text=text, source=source):
            return {"kind": "user", "text": text, "source": source}
        case AssistantMessage(text=text, tool_calls=calls, interrupted=interrupted):
            return {
                "kind": "assistant",
                "text": text,
                "interrupted": interrupted,
                "tool_calls": [
                    {"call_id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls
                ],
            }
        case ToolResultMessage(call_id=call_id, name=name, content=content, is_error=is_error):
            return {
                "kind": "tool",
                "call_id": call_id,
                "name": name,
                "content": content,
                "is_error": is_error,
            }


def _str(data: dict[str, JSON], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"chat message field {key!r} must be a string, got {type(value).__name__}")
    return value


def message_from_json(data: dict[str, JSON]) -> ChatMessage:
    """Build a message from :func:`message_to_json` output; raises ``ValueError`` if malformed."""
    kind = data.get("kind")
    if kind == "system":
        return SystemMessage(text=_str(data, "text"))
    if kind == "user":
        source = _str(data, "source", "user")
        if source not in ("user", "peer", "system", "guidance"):
            raise ValueError(f"unknown user message source {source!r}")
        return UserMessage(text=_str(data, "text"), source=source)  # type: ignore[arg-type]  # narrowed by the check above
    if kind == "assistant":
        raw_calls = data.get("tool_calls") or []
        if not isinstance(raw_calls, list | tuple):
            raise ValueError("assistant message field 'tool_calls' must be a list")
        calls: list[ToolCall] = []
        for raw in raw_calls:
            if not isinstance(raw, dict):
                raise ValueError("each tool call must be an object")
            calls.append(
                ToolCall(
                    call_id=_str(raw, "call_id"),
                    name=_str(raw, "name"),
                    arguments=_str(raw, "arguments"),
                )
            )
        return AssistantMessage(
            text=_str(data, "text"),
            tool_calls=tuple(calls),
            interrupted=bool(data.get("interrupted", False)),
        )
    if kind == "tool":
        return ToolResultMessage(
            call_id=_str(data, "call_id"),
            name=_str(data, "name"),
            content=_str(data, "content"),
            is_error=bool(data.get("is_error", False)),
        )
    raise ValueError(f"unknown chat message kind {kind!r}")

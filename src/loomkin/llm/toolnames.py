"""Tool names as providers accept them, and back.

OpenAI and Anthropic both refuse tool names outside ``^[a-zA-Z0-9_-]{1,64}$``, but Loomkin
names the tools of MCP servers ``SERVER.tool`` (SPEC §3.12) and servers may use other
characters still. The adapters therefore send each name that would be refused under a wire
name (``git.git_status`` → ``git__git_status``; a name that is too long, or whose wire form
another tool already has, gets a short hash) and turn the names in the model's tool calls
back. Agents, the log, permissions and the UI only ever see the real name; the mapping is
rebuilt for every request from the request itself, so it needs no state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import TYPE_CHECKING

from loomkin.core.chat import AssistantMessage, ToolResultMessage
from loomkin.llm.model import ToolCallDelta

if TYPE_CHECKING:
    from loomkin.core.chat import ChatMessage
    from loomkin.llm.model import ModelRequest, StreamEvent

__all__ = ["WireNames", "wire_name"]

_VALID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_INVALID_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_MAX = 64


def wire_name(name: str) -> str:
    """The provider-safe form of ``name`` (itself when it is already accepted)."""
    if _VALID.match(name):
        return name
    safe = _INVALID_CHAR.sub("_", name.replace(".", "__")) or "tool"
    return safe if len(safe) <= _MAX else _hashed(safe, name)


def _hashed(safe: str, name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{safe[: _MAX - 11]}_{digest}"


class WireNames:
    """The names of one request: real → wire for what is sent, wire → real for the answer."""

    __slots__ = ("_to_real", "_to_wire")

    def __init__(self, names: tuple[str, ...]) -> None:
        self._to_wire: dict[str, str] = {}
        self._to_real: dict[str, str] = {}
        for name in dict.fromkeys(names):
            wire = wire_name(name)
            if wire in self._to_real and self._to_real[wire] != name:
                wire = _hashed(wire, name)  # two real names, one wire form: tell them apart
            self._to_wire[name] = wire
            self._to_real[wire] = name

    @classmethod
    def for_request(cls, request: ModelRequest) -> WireNames:
        """The mapping for ``request``: its tools, and the tool calls in its transcript."""
        names = [t.name for t in request.tools]
        for message in request.messages:
            if isinstance(message, AssistantMessage):
                names.extend(c.name for c in message.tool_calls)
            elif isinstance(message, ToolResultMessage):
                names.append(message.name)
        return cls(tuple(names))

    @property
    def identity(self) -> bool:
        """Whether every name is sent as it is (nothing to rewrite)."""
        return all(real == wire for real, wire in self._to_wire.items())

    def outgoing(self, request: ModelRequest) -> ModelRequest:
        """``request`` with wire names in its tools and transcript."""
        if self.identity:
            return request
        wire = self._to_wire
        return dataclasses.replace(
            request,
            tools=tuple(dataclasses.replace(t, name=wire[t.name]) for t in request.tools),
            messages=tuple(self._message(m) for m in request.messages),
        )

    def _message(self, message: ChatMessage) -> ChatMessage:
        wire = self._to_wire
        if isinstance(message, AssistantMessage) and message.tool_calls:
            calls = tuple(dataclasses.replace(c, name=wire[c.name]) for c in message.tool_calls)
            return dataclasses.replace(message, tool_calls=calls)
        if isinstance(message, ToolResultMessage):
            return dataclasses.replace(message, name=wire[message.name])
        return message

    def incoming(self, event: StreamEvent) -> StreamEvent:
        """``event`` with the real tool name (an unknown name is left for the loop to refuse)."""
        if isinstance(event, ToolCallDelta) and event.name is not None:
            real = self._to_real.get(event.name, event.name)
            if real != event.name:
                return dataclasses.replace(event, name=real)
        return event

"""One tool of an MCP server, as a :class:`~loomkin.tools.base.Tool` agents can call.

The tool is called ``SERVER.tool``; its description and JSON Schema are the server's. The
arguments are checked against that schema here (with the ``jsonschema`` package the SDK
brings), so a model that gets them wrong reads which field is wrong before anything is sent.
Calls are ``execute`` tools for the permission gate (a server can do anything), with the
server's own setting (``permission = "allow" | "ask" | "deny"``) applied as a ``mcp:SERVER``
policy entry. The target is empty: an "allow always" answer covers the tool, whatever its
arguments (the prompt still shows them).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol, cast

from pydantic import BaseModel, ConfigDict

from loomkin.core.arguments import ArgumentsError, decode_arguments
from loomkin.errors import ToolError
from loomkin.tools.mcp.spec import tool_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jsonschema.protocols import Validator

    from loomkin.core.events.base import JSON
    from loomkin.core.records import ToolCategory
    from loomkin.tools.base import ToolContext

__all__ = ["McpArguments", "McpCaller", "McpTool"]


class McpArguments(BaseModel):
    """The arguments of an MCP tool call: any JSON object its schema accepts."""

    model_config = ConfigDict(extra="allow", frozen=True)


class McpCaller(Protocol):
    """What an :class:`McpTool` calls through: its server's connection."""

    async def call(self, tool: str, arguments: dict[str, JSON]) -> str:
        """Call the server's tool ``tool``; return the text the model reads.

        Raises:
            ToolError: the server is down, the call failed or timed out, or the tool
                reported an error (the message says which).
        """
        ...


class McpTool:
    """A tool of an MCP server (see the module docstring).

    Args:
        server: The server's name (the prefix of the tool's name).
        name: The tool's name on the server.
        description: The server's description of the tool.
        schema: The JSON Schema of its arguments (an object schema).
        caller: The server's connection.
    """

    __slots__ = ("_caller", "_description", "_name", "_remote", "_schema", "_summary", "_validator")

    def __init__(
        self,
        *,
        server: str,
        name: str,
        description: str,
        schema: Mapping[str, JSON],
        caller: McpCaller,
    ) -> None:
        from jsonschema.validators import validator_for  # the mcp extra brings it

        self._remote = name
        self._name = tool_name(server, name)
        self._summary = description.strip()
        self._description = f"{self._summary or name} (MCP server {server!r})"
        # A deep copy: a caller that edits the schema it gave cannot change the tool.
        self._schema: dict[str, JSON] = json.loads(json.dumps(dict(schema)))
        self._schema.setdefault("type", "object")
        cls = validator_for(self._schema)
        self._validator: Validator = cls(self._schema)
        self._caller = caller

    @property
    def name(self) -> str:
        return self._name

    @property
    def remote_name(self) -> str:
        """The tool's name on its server."""
        return self._remote

    @property
    def description(self) -> str:
        return self._description

    @property
    def summary(self) -> str:
        """The server's own description of the tool."""
        return self._summary

    @property
    def category(self) -> ToolCategory:
        return "execute"

    def schema(self) -> dict[str, JSON]:
        copied: dict[str, JSON] = json.loads(json.dumps(self._schema))
        return copied

    def parse_args(self, raw: str | Mapping[str, JSON]) -> McpArguments:
        obj = _decode(self._name, raw) if isinstance(raw, str) else dict(raw)
        problems = sorted(self._validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if problems:
            listed = "; ".join(_describe(p.absolute_path, p.message) for p in problems[:5])
            raise ToolError(f"Invalid arguments for {self._name}: {listed}")
        return McpArguments.model_validate(obj)

    def target(self, args: BaseModel, ctx: ToolContext) -> str:
        return ""

    def idempotent(self, args: BaseModel) -> bool:
        # What a remote tool does is the server's business; its annotations are hints, not
        # promises, so a call cut off by a crash is reported as interrupted, never re-run.
        return False

    async def run(self, args: BaseModel, ctx: ToolContext, deps: object) -> str:
        arguments: dict[str, JSON] = args.model_dump(mode="json")
        return await self._caller.call(self._remote, arguments)

    def __repr__(self) -> str:
        return f"McpTool(name={self._name!r})"


def _decode(name: str, raw: str) -> dict[str, JSON]:
    # The same strict, bounded decoding as the built-in tools: JSON nested thousands deep,
    # a 5,000-digit number or NaN is refused with a message the model can act on.
    try:
        decoded = decode_arguments(raw)
    except ArgumentsError as exc:
        raise ToolError(f"Invalid arguments for {name}: {exc}; send a JSON object") from None
    return cast("dict[str, JSON]", decoded)


def _describe(path: Iterable[str | int], message: str) -> str:
    parts = [str(p) for p in path]
    return f"field {'.'.join(parts)!r}: {message}" if parts else message

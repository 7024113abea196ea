"""Lean tool sets: the tools whose schemas every request of an agent carries.

How this works and why:

* Tool schemas are paid on every call (they were 70–85 % of a request). A role names the
  tools it uses often (:attr:`~loomkin.agents.roles.Role.core`); only those go out with
  full (compacted, :mod:`loomkin.llm.schemas`) schemas. The role's other tools stay callable
  by name: the system prompt lists them with a one-line purpose, and ``load_tools`` shows
  their argument schemas on demand (its result is an ordinary tool result).
* The set is fixed for the agent's life, so the tools, the first part of every request,
  stay byte-identical from call to call (prompt caching, :mod:`loomkin.llm.caching`).
  Loading a tool never changes the request's tool list; it adds a tool result.
* A role without a ``core`` list (a custom role, one given an MCP server's tools) keeps its
  tools in order until :data:`MAX_TOOL_SCHEMA_TOKENS` is reached; the rest are deferred.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.notices import deferred_tools_text
from loomkin.llm.caching import tool_schema_tokens
from loomkin.llm.model import ToolSchema
from loomkin.llm.schemas import compact_parameters, short_description

if TYPE_CHECKING:
    from loomkin.agents.roles import Role
    from loomkin.tools.base import ToolSpec

__all__ = ["LOAD_TOOLS", "MAX_TOOL_SCHEMA_TOKENS", "LeanTools", "lean_tools", "schema_of"]

MAX_TOOL_SCHEMA_TOKENS = 4000
"""No request carries more tool schema than this (estimated, chars / 4)."""
LOAD_TOOLS = "load_tools"
"""The tool that shows a deferred tool's schema."""


def schema_of(spec: ToolSpec) -> ToolSchema:
    """The compact schema a request carries for ``spec``."""
    return ToolSchema(
        name=spec.name,
        description=short_description(spec.description),
        parameters=compact_parameters(spec.parameters),
    )


class LeanTools:
    """What one agent's requests carry: core schemas, and the listing of the rest."""

    def __init__(self, schemas: tuple[ToolSchema, ...], deferred: tuple[ToolSpec, ...]) -> None:
        self.schemas = schemas
        """Tool schemas of every request, in the role's order."""
        self.deferred = deferred
        """Tools callable by name whose schemas ``load_tools`` shows."""

    def prompt_text(self) -> str:
        """The system prompt's listing of the deferred tools (empty when there are none)."""
        return deferred_tools_text([(s.name, _purpose(s.description)) for s in self.deferred])


_PURPOSE_CHARS = 60


def _purpose(description: str) -> str:
    """A tool's purpose in one short line: its first sentence, cut at a word."""
    text = short_description(description).split(". ", 1)[0].rstrip(".")
    for mark in ("; ", ": "):  # a clause boundary reads better than a cut word
        if len(text) <= _PURPOSE_CHARS:
            break
        head = text.split(mark, 1)[0]
        if len(head) >= _PURPOSE_CHARS // 3:
            text = head
    if len(text) <= _PURPOSE_CHARS:
        return text
    return text[:_PURPOSE_CHARS].rsplit(" ", 1)[0] + "…"


def _tokens(specs: list[ToolSpec | None]) -> int:
    return tool_schema_tokens(tuple(schema_of(s) for s in specs if s is not None))


def lean_tools(role: Role, specs: list[ToolSpec]) -> LeanTools:
    """Split ``specs`` (the role's tool set, in order) into request schemas and deferred tools."""
    loader = next((s for s in specs if s.name == LOAD_TOOLS), None)
    others = [s for s in specs if s.name != LOAD_TOOLS]
    if role.core is not None:
        core = set(role.core)
        chosen = [s for s in others if s.name in core]
        # Tools of MCP servers the user gave the role ("SERVER.tool") go out whole too,
        # while the budget allows: the user chose them for this role.
        for spec in others:
            if spec.name in core or "." not in spec.name:
                continue
            if _tokens([*chosen, spec, loader]) > MAX_TOOL_SCHEMA_TOKENS:
                break
            chosen.append(spec)
    else:
        chosen = []
        for spec in others:
            if _tokens([*chosen, spec, loader]) > MAX_TOOL_SCHEMA_TOKENS:
                break
            chosen.append(spec)
    deferred = tuple(s for s in others if s not in chosen)
    if deferred and loader is not None:
        chosen.append(loader)
    elif loader is None:
        deferred = ()  # nothing could load them: every tool goes out whole
        chosen = others
    return LeanTools(tuple(schema_of(s) for s in chosen), deferred)

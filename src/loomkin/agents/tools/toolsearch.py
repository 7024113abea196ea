"""``load_tools``: show the argument schemas of tools a request does not carry.

A role's requests carry full schemas only for the tools it uses often
(:mod:`loomkin.agents.toolsets`); the system prompt lists the others by name. This tool
returns their schemas as text, so the model can call them; the request's tool list never
changes (it stays cacheable).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.agents.toolsets import LOAD_TOOLS, schema_of
from loomkin.errors import ToolError
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["TOOLSEARCH_TOOLS"]


class LoadToolsArgs(ToolArgs):
    """Arguments of ``load_tools``."""

    names: list[str] = Field(min_length=1, max_length=20, description="Tool names.")


@tool(name=LOAD_TOOLS, category="coordination", args=LoadToolsArgs, idempotent=True)
async def load_tools(args: LoadToolsArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Show how to call tools from your "More tools" list (their arguments)."""
    specs = {s.name: s for s in deps.directory.tool_specs(ctx.agent_id)}
    unknown = [n for n in args.names if n not in specs]
    if unknown:
        yours = ", ".join(n for n in specs if n != LOAD_TOOLS)
        raise ToolError(f"You have no tool named {', '.join(map(repr, unknown))}. Yours: {yours}")
    parts = []
    for name in dict.fromkeys(args.names):
        schema = schema_of(specs[name])
        arguments = json.dumps(schema.parameters, separators=(",", ":"))
        parts.append(f"{name}: {specs[name].description.strip()}\nArguments: {arguments}")
    return "\n\n".join(parts) + "\n\nCall them by name like your other tools."


TOOLSEARCH_TOOLS: tuple[Tool[AgentContext], ...] = (load_tools,)

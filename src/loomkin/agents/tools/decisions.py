"""Decision-graph tools: record goals, options, decisions and outcomes; query them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.core.events import DecisionLogged
from loomkin.ids import DecisionId, new_id
from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["DECISION_TOOLS"]

NodeType = Literal["goal", "decision", "option", "action", "outcome", "observation"]


class DecisionLogArgs(ToolArgs):
    """Arguments of ``decision_log``."""

    node_type: NodeType
    title: str
    description: str = ""
    confidence: int | None = Field(default=None, ge=0, le=100)
    parent_id: str | None = Field(default=None, description="The node this one follows from.")


@tool(name="decision_log", category="coordination", args=DecisionLogArgs)
async def decision_log(args: DecisionLogArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Record a node of the team's decision graph (a goal, option, decision, outcome ...)."""
    decision_id = DecisionId(new_id("dec_"))
    await deps.log.append(
        DecisionLogged(
            session_id=ctx.session_id,
            decision_id=decision_id,
            team_id=ctx.team_id,
            node_type=args.node_type,
            title=args.title,
            description=args.description,
            agent_id=ctx.agent_id,
            parent_id=DecisionId(args.parent_id) if args.parent_id else None,
            confidence=args.confidence,
        )
    )
    return f"Logged {args.node_type} {decision_id}: {args.title}"


class DecisionQueryArgs(ToolArgs):
    """Arguments of ``decision_query``."""

    search: str | None = Field(default=None, description="Words to look for in titles.")
    node_type: NodeType | None = None
    limit: int = Field(default=20, ge=1, le=200)


@tool(name="decision_query", category="coordination", args=DecisionQueryArgs, idempotent=True)
async def decision_query(args: DecisionQueryArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Look up recorded goals and decisions of the session (newest first)."""
    words = [w.lower() for w in (args.search or "").split() if w]
    hits = []
    for node in reversed(deps.decisions.nodes()):
        if args.node_type is not None and node.node_type != args.node_type:
            continue
        text = f"{node.title} {node.description}".lower()
        if words and not all(w in text for w in words):
            continue
        hits.append(f"- {node.node_type} {node.decision_id}: {node.title}")
        if len(hits) >= args.limit:
            break
    return "\n".join(hits) if hits else "No matching decisions."


DECISION_TOOLS: tuple[Tool[AgentContext], ...] = (decision_log, decision_query)

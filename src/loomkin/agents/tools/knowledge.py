"""Knowledge tools: share a finding with the agents it concerns; search the team's findings.

``share_insight`` is the one way to share a finding (an insight, blocker, discovery, warning,
bug, ...): inside the team it reaches only the agents whose current task and files it
concerns (the relevance scorer picks them), and it climbs ``depth`` levels of the team tree
(default ``[comms] propagation_depth``) as a notice to each ancestor team.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["KNOWLEDGE_TOOLS"]


class ShareInsightArgs(ToolArgs):
    """Arguments of ``share_insight``."""

    content: str = Field(description="The finding, self-contained.")
    kind: str = Field(
        default="insight",
        description="insight, blocker, discovery, warning, bug, fix, refactor, ... (it decides "
        "who counts as concerned: bugs and fixes reach coders, testers and reviewers first).",
    )
    files: list[str] = Field(default_factory=list, description="Files it concerns.")
    depth: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="Levels it climbs above your team (1: your parent team; 0: your team "
        "only). Default: the session's setting.",
    )


@tool(name="share_insight", category="coordination", args=ShareInsightArgs)
async def share_insight(args: ShareInsightArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Share a finding: it reaches the teammates it concerns and climbs to the teams above.

    Inside your team, recipients are picked by relevance to their current task and files
    (not broadcast to all); each parent team up to `depth` levels gets it as a notice.
    """
    shared = await deps.knowledge.share(
        deps.caller(ctx),
        args.content,
        kind=args.kind,
        files=args.files,
        depth=args.depth,
    )
    names = [m.name for m in deps.directory.members() if m.agent_id in shared.recipients]
    sent = (
        f"; sent it to {', '.join(names)}, whose work it concerns"
        if names
        else " (no teammate's current work concerns it)"
    )
    teams = [repr(deps.state.team(t).name) for t in shared.propagated_to]
    climbed = f"; it climbed to team {', '.join(teams)}" if teams else ""
    return f"Recorded the {args.kind} in your team's knowledge{sent}{climbed}."


class KnowledgeQueryArgs(ToolArgs):
    """Arguments of ``knowledge_query``."""

    search: str = Field(default="", description="Words every finding must contain.")
    limit: int = Field(default=10, ge=1, le=50)


@tool(name="knowledge_query", category="coordination", args=KnowledgeQueryArgs, idempotent=True)
async def knowledge_query(args: KnowledgeQueryArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Search the findings your team (and its sub-teams) recorded, newest first."""
    hits = deps.knowledge.search(ctx.team_id, args.search, args.limit)
    if not hits:
        return "No matching findings."
    return "\n".join(
        f"- [{f.insight_type}] {f.author_name}: {f.text}"
        + (f" (files: {', '.join(f.files)})" if f.files else "")
        for f in hits
    )


KNOWLEDGE_TOOLS: tuple[Tool[AgentContext], ...] = (share_insight, knowledge_query)

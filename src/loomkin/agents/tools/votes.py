"""Collective decision tools: propose a vote, cast a vote, resolve a vote early."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from loomkin.tools.base import Tool, ToolArgs, ToolContext, tool

if TYPE_CHECKING:
    from loomkin.agents.context import AgentContext

__all__ = ["VOTE_TOOLS"]


class ProposeVoteArgs(ToolArgs):
    """Arguments of ``propose_vote``."""

    topic: str = Field(description="The question to decide.")
    options: list[str] = Field(min_length=2, description="The choices (at least two).")
    scope: str = Field(
        default="general",
        description="Expertise that matters (code, testing, architecture, ...): it weighs votes.",
    )
    quorum: Literal["majority", "supermajority", "unanimous"] = "majority"
    deadline_s: float = Field(default=120.0, gt=0, le=3600, description="Seconds to vote.")


@tool(name="propose_vote", category="coordination", args=ProposeVoteArgs)
async def propose_vote(args: ProposeVoteArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Ask your team to decide between options; every member (you too) votes with cast_vote."""
    proposed = await deps.votes.propose(
        deps.caller(ctx),
        topic=args.topic,
        options=args.options,
        scope=args.scope,
        quorum=args.quorum,
        deadline_s=args.deadline_s,
    )
    return (
        f"Vote {proposed.vote_id} opened among {len(proposed.voters)} agents; the result "
        "arrives as a message. Cast your own vote with cast_vote."
    )


class CastVoteArgs(ToolArgs):
    """Arguments of ``cast_vote``."""

    vote_id: str
    option: str = Field(description="One of the vote's options, as written.")
    confidence: float = Field(default=0.7, ge=0, le=1, description="How sure you are, 0-1.")
    rationale: str = Field(default="", description="One sentence: why.")


@tool(name="cast_vote", category="coordination", args=CastVoteArgs)
async def cast_vote(args: CastVoteArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Vote in an open vote (your weight depends on your role's expertise and confidence)."""
    cast = await deps.votes.cast(
        deps.caller(ctx), args.vote_id, args.option, args.confidence, args.rationale
    )
    return f"Voted {cast.option!r} in {args.vote_id} (weight {cast.weight:.2f})."


class ResolveVoteArgs(ToolArgs):
    """Arguments of ``resolve_vote``."""

    vote_id: str


@tool(name="resolve_vote", category="coordination", args=ResolveVoteArgs)
async def resolve_vote(args: ResolveVoteArgs, ctx: ToolContext, deps: AgentContext) -> str:
    """Close a vote now with the votes cast so far and record the outcome."""
    resolved = await deps.votes.resolve(args.vote_id, reason=f"closed early by {ctx.agent_name}")
    if resolved.winner is None:
        return (
            f"Vote {args.vote_id} closed without a decision (no quorum); it was escalated to "
            "your lead (or the Concierge) to decide."
        )
    return f"Vote {args.vote_id} decided: {resolved.winner} ({resolved.winning_pct:.0f}%)."


VOTE_TOOLS: tuple[Tool[AgentContext], ...] = (propose_vote, cast_vote, resolve_vote)

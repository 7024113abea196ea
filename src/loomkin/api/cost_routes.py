"""``GET /api/sessions/{id}/spend``: tokens and cost by agent and team, cached input apart."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from loomkin.api.routes import ApiContext

__all__ = ["SpendOut", "cost_router"]


class UsageOut(BaseModel):
    """Tokens and cost of an agent, a team or the session."""

    model_calls: int
    input_tokens: int = Field(description="Every input token: cached, written and uncached.")
    cached_input_tokens: int = Field(description="Input read from a provider's prompt cache.")
    cache_write_tokens: int = Field(description="Input written to a provider's prompt cache.")
    uncached_input_tokens: int = Field(description="Input neither read from nor written to one.")
    output_tokens: int
    cost_usd: float


class AgentSpendOut(UsageOut):
    """What one agent spent."""

    agent_id: str
    name: str
    role: str
    team_id: str
    team_name: str
    model: str


class TeamSpendOut(UsageOut):
    """What the agents of one team spent together."""

    team_id: str
    name: str
    agents: int


class SpendOut(UsageOut):
    """What a session spent: by agent, by team, in all."""

    session_id: str
    agents: list[AgentSpendOut]
    teams: list[TeamSpendOut]


def _ctx(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


cost_router = APIRouter()


@cost_router.get("/api/sessions/{session_id}/spend", response_model=SpendOut, tags=["sessions"])
async def get_spend(ctx: Annotated[ApiContext, Depends(_ctx)], session_id: str) -> SpendOut:
    """What a stored session spent, by agent and by team, with cached input counted apart."""
    spend = await ctx.loomkin.spend(session_id)
    return SpendOut.model_validate(asdict(spend))

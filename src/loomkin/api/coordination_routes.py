"""HTTP routes of negotiations, rendezvous and budgets: list, resolve, open, join, raise.

Each route is one call on the facade (:class:`loomkin.service.Session`); the bodies are
defined here, at the boundary, and refuse unknown fields. For a session running on a worker
of the cluster this server shows, each route sends the same call to that worker as one
action (:mod:`loomkin.cluster.actions`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from loomkin.api.routes import Ctx  # noqa: TC001 - FastAPI reads the annotation at runtime
from loomkin.api.schemas import BudgetOut, ErrorOut
from loomkin.api.views import budgets as budget_rows
from loomkin.cluster.actions import (
    CreateRendezvous,
    JoinRendezvous,
    ListNegotiations,
    ListRendezvous,
    RaiseBudgets,
    ResolveNegotiation,
    ShowBudgets,
)

if TYPE_CHECKING:
    from loomkin.service import RendezvousInfo

__all__ = ["coordination_router"]

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 421, 422, 503)
}
coordination_router = APIRouter(responses=_ERRORS)
_SESSION = "/api/sessions/{session_id}"


class NegotiationOut(BaseModel):
    """One negotiation of an assignment."""

    negotiation_id: str
    task_id: str
    task_title: str
    agent_id: str
    agent_name: str
    assigner: str
    status: str
    deadline: float
    response: str
    counter_kind: str
    suggested_name: str
    reason: str
    decided_by: str
    new_owner_name: str
    outcome_reason: str


class ResolveIn(BaseModel):
    """The user's answer to an assignee's objection."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    resolution: Literal["accept", "override", "reassign"]
    agent: str | None = Field(default=None, max_length=200, description="For reassign: who.")
    reason: str = Field(default="", max_length=2000)


class ResolveOut(BaseModel):
    """What the resolution did."""

    result: str


class BudgetsIn(BaseModel):
    """Limits to change (only those given change; null removes a limit)."""

    model_config = ConfigDict(extra="forbid")
    session_usd: float | None = Field(default=None, ge=0)
    team_usd: float | None = Field(default=None, ge=0)
    agent_usd: float | None = Field(default=None, ge=0)
    session_tokens: int | None = Field(default=None, ge=0)
    team_tokens: int | None = Field(default=None, ge=0)
    agent_tokens: int | None = Field(default=None, ge=0)
    resume: bool = Field(default=True, description="Resume the agents the new limits free.")


class BudgetUpdateOut(BaseModel):
    """The limits after a change, and who was resumed."""

    limits: dict[str, float | int | None]
    resumed: list[str]
    still_paused: list[str]
    budgets: list[BudgetOut]


_NEGOTIATIONS: TypeAdapter[list[NegotiationOut]] = TypeAdapter(list[NegotiationOut])
_BUDGETS: TypeAdapter[list[BudgetOut]] = TypeAdapter(list[BudgetOut])


@coordination_router.get(
    f"{_SESSION}/negotiations", response_model=list[NegotiationOut], tags=["coordination"]
)
async def list_negotiations(
    ctx: Ctx, session_id: str, open_only: bool = Query(default=False, alias="open")
) -> list[NegotiationOut]:
    """Negotiations of assignments, oldest first (``?open=true``: only open ones)."""
    if (cluster := ctx.acting(session_id)) is not None:  # it runs on a worker: over NATS
        action = ListNegotiations.of(open_only=open_only)
        return await cluster.act(session_id, action, _NEGOTIATIONS.validate_python)
    session = ctx.loomkin.session(session_id)
    return [NegotiationOut(**asdict(n)) for n in session.negotiations(open_only=open_only)]


@coordination_router.post(
    f"{_SESSION}/negotiations/{{task_id}}/resolve", response_model=ResolveOut, tags=["coordination"]
)
async def resolve_negotiation(
    ctx: Ctx, session_id: str, task_id: str, body: ResolveIn
) -> ResolveOut:
    """Answer an objection as the user: accept it, override it, or reassign the task."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = ResolveNegotiation.of(
            task_id=task_id, resolution=body.resolution, agent=body.agent, reason=body.reason
        )
        return await cluster.act(session_id, action, ResolveOut.model_validate)
    session = ctx.loomkin.session(session_id)
    text = await session.resolve_negotiation(
        task_id, body.resolution, agent=body.agent, reason=body.reason
    )
    return ResolveOut(result=text)


@coordination_router.get(
    f"{_SESSION}/budgets", response_model=list[BudgetOut], tags=["coordination"]
)
async def show_budgets(ctx: Ctx, session_id: str) -> list[BudgetOut]:
    """The session's spend, then each team's (sub-teams included), against the limits."""
    if (cluster := ctx.acting(session_id)) is not None:
        return await cluster.act(session_id, ShowBudgets(), _BUDGETS.validate_python)
    return budget_rows(ctx.loomkin.session(session_id))


@coordination_router.post(
    f"{_SESSION}/budgets", response_model=BudgetUpdateOut, tags=["coordination"]
)
async def raise_budgets(ctx: Ctx, session_id: str, body: BudgetsIn) -> BudgetUpdateOut:
    """Change the limits given (journaled) and resume the agents a budget paused."""
    changes = body.model_dump(exclude_unset=True, exclude={"resume"})
    if (cluster := ctx.acting(session_id)) is not None:
        action = RaiseBudgets.of(changes=changes, resume=body.resume)
        return await cluster.act(session_id, action, BudgetUpdateOut.model_validate)
    session = ctx.loomkin.session(session_id)
    update = await session.raise_budgets(changes, resume=body.resume)
    return BudgetUpdateOut(
        limits=update.limits,
        resumed=list(update.resumed),
        still_paused=list(update.still_paused),
        budgets=budget_rows(session),
    )


class RendezvousOut(BaseModel):
    """One rendezvous point."""

    rendezvous_id: str
    name: str
    status: str
    created_by: str
    participants: list[str]
    arrived: list[str]
    missing: list[str]
    timeout_s: float
    deadline: float
    action: str


class RendezvousIn(BaseModel):
    """A rendezvous to open."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    participants: list[str] = Field(min_length=1, max_length=200)
    timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    on_complete: Literal["message", "create_task", "unblock_task"] = "message"
    message: str = Field(default="", max_length=20_000)
    notify: list[str] = Field(default_factory=list, max_length=200)
    task_title: str = Field(default="", max_length=500)
    task_team: str | None = Field(default=None, max_length=200)
    task_id: str | None = Field(default=None, max_length=200)


class JoinIn(BaseModel):
    """Participants to add to an open rendezvous."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    agents: list[str] = Field(min_length=1, max_length=200)


class JoinOut(BaseModel):
    """Who was added."""

    added: list[str]


_RENDEZVOUS: TypeAdapter[list[RendezvousOut]] = TypeAdapter(list[RendezvousOut])


def _rendezvous_out(info: RendezvousInfo) -> RendezvousOut:
    data = asdict(info)
    for key in ("participants", "arrived", "missing"):
        data[key] = list(data[key])
    return RendezvousOut(**data)


@coordination_router.get(
    f"{_SESSION}/rendezvous", response_model=list[RendezvousOut], tags=["coordination"]
)
async def list_rendezvous(ctx: Ctx, session_id: str) -> list[RendezvousOut]:
    """Rendezvous points: participants, who arrived, who is missing, the outcome."""
    if (cluster := ctx.acting(session_id)) is not None:
        return await cluster.act(session_id, ListRendezvous(), _RENDEZVOUS.validate_python)
    return [_rendezvous_out(r) for r in ctx.loomkin.session(session_id).rendezvous()]


@coordination_router.post(
    f"{_SESSION}/rendezvous", response_model=RendezvousOut, status_code=201, tags=["coordination"]
)
async def create_rendezvous(ctx: Ctx, session_id: str, body: RendezvousIn) -> RendezvousOut:
    """Open a rendezvous as the user."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = CreateRendezvous.of(**body.model_dump())
        return await cluster.act(session_id, action, RendezvousOut.model_validate)
    info = await ctx.loomkin.session(session_id).create_rendezvous(
        body.name,
        body.participants,
        timeout_s=body.timeout_s,
        action=body.on_complete,
        message=body.message,
        notify=body.notify,
        task_title=body.task_title,
        task_team=body.task_team,
        task_id=body.task_id,
    )
    return _rendezvous_out(info)


@coordination_router.post(
    f"{_SESSION}/rendezvous/{{name}}/join", response_model=JoinOut, tags=["coordination"]
)
async def join_rendezvous(ctx: Ctx, session_id: str, name: str, body: JoinIn) -> JoinOut:
    """Add participants (from any team) to an open rendezvous."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = JoinRendezvous.of(name=name, agents=body.agents)
        return await cluster.act(session_id, action, JoinOut.model_validate)
    added = await ctx.loomkin.session(session_id).join_rendezvous(name, body.agents)
    return JoinOut(added=added)

"""HTTP routes for adaptive teams: a team's scaling state and bounds, and claiming a task.

``GET  /api/sessions/{id}/teams/{team}/scale``  → the team's size, backlog, ratio and bounds
``POST /api/sessions/{id}/teams/{team}/scale``  ``{"min", "max", "pin", "clear", "reason"}``
``POST /api/sessions/{id}/tasks/{task}/claim``   ``{"agent"}`` (the work-stealing claim)

Each turns into one call on the facade (``Session.team_scale``, ``scale_team``,
``claim_task``); a bad value is a 400 naming it (the facade's ``UserError``). For a session
running on a worker of the cluster this server shows, the same call goes to that worker
(:mod:`loomkin.cluster.actions`).
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from loomkin.api.routes import Ctx  # noqa: TC001 (FastAPI reads the annotation at run time)
from loomkin.api.schemas import ErrorOut
from loomkin.cluster.actions import ClaimTask, ScaleTeam, ShowTeamScale

__all__ = ["TaskClaimIn", "TeamScaleIn", "TeamScaleOut", "scaling_router"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TeamScaleIn(_In):
    """Pin or bound a team's worker agents (``clear``: back to ``[autoscale]``)."""

    min: int | None = Field(default=None, ge=0, le=1000)
    max: int | None = Field(default=None, ge=1, le=1000)
    pin: int | None = Field(default=None, ge=0, le=1000)
    clear: bool = False
    reason: str = Field(default="", max_length=2000)


class TeamScaleOut(BaseModel):
    """A team's size and load as the autoscaler sees them."""

    team_id: str
    team_name: str
    enabled: bool
    workers: int
    idle: int
    onboarding: int
    ready: int
    ratio: float | None
    threshold: float
    min_agents: int
    max_agents: int
    pinned: int | None
    window_s: float
    cooldown_s: float
    retire_after_s: float
    spawns: int
    retires: int
    hold: str


class TaskClaimIn(_In):
    """The agent that takes the task (``name``, ``team/name`` or id)."""

    agent: str = Field(min_length=1, max_length=200)


class TaskClaimOut(BaseModel):
    task_id: str
    agent_id: str
    claimed: bool


_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 503)
}
_CLAIMED: TypeAdapter[dict[str, str]] = TypeAdapter(dict[str, str])
scaling_router = APIRouter(responses=_ERRORS, tags=["teams"])
_SCALE = "/api/sessions/{session_id}/teams/{team}/scale"


@scaling_router.get(_SCALE, response_model=TeamScaleOut)
async def get_team_scale(ctx: Ctx, session_id: str, team: str) -> TeamScaleOut:
    """The team's workers, backlog, ratio, bounds and what the autoscaler did."""
    if (cluster := ctx.acting(session_id)) is not None:  # it runs on a worker: over NATS
        action = ShowTeamScale.of(team=team)
        return await cluster.act(session_id, action, TeamScaleOut.model_validate)
    info = ctx.loomkin.session(session_id).team_scale(team)
    return TeamScaleOut(**asdict(info))


@scaling_router.post(_SCALE, response_model=TeamScaleOut)
async def set_team_scale(ctx: Ctx, session_id: str, team: str, body: TeamScaleIn) -> TeamScaleOut:
    """Pin or bound the team's size for the autoscaler (journaled as ``team_scale_set``)."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = ScaleTeam.of(
            team=team,
            min_agents=body.min,
            max_agents=body.max,
            pin=body.pin,
            clear=body.clear,
            reason=body.reason,
        )
        return await cluster.act(session_id, action, TeamScaleOut.model_validate)
    info = await ctx.loomkin.session(session_id).scale_team(
        team,
        min_agents=body.min,
        max_agents=body.max,
        pin=body.pin,
        clear=body.clear,
        reason=body.reason,
    )
    return TeamScaleOut(**asdict(info))


@scaling_router.post(
    "/api/sessions/{session_id}/tasks/{task_id}/claim", response_model=TaskClaimOut
)
async def claim_task(ctx: Ctx, session_id: str, task_id: str, body: TaskClaimIn) -> TaskClaimOut:
    """Give a ready, not yet started task to ``agent`` (409 when it started or a claim won)."""
    if (cluster := ctx.acting(session_id)) is not None:  # it runs on a worker: over NATS
        action = ClaimTask.of(task_id=task_id, agent=body.agent)
        claimed = await cluster.act(session_id, action, _CLAIMED.validate_python)
        return TaskClaimOut(task_id=task_id, agent_id=claimed["agent_id"], claimed=True)
    session = ctx.loomkin.session(session_id)
    agent = session.agent(body.agent)
    await session.claim_task(task_id, agent.agent_id)
    return TaskClaimOut(task_id=task_id, agent_id=agent.agent_id, claimed=True)

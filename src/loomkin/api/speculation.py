"""HTTP routes for speculative tasks (SPEC §3.7): list, start, add an assumption, cancel.

Each route is one call on the facade (:class:`loomkin.service.Session`); bodies are checked by
the schemas here (unknown fields refused), assumptions once more by the facade. For a session
running on a worker of the cluster this server shows, the same call goes to that worker as
one action (:mod:`loomkin.cluster.actions`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from loomkin.api.routes import ApiContext
from loomkin.cluster.actions import (
    AddAssumption,
    CancelSpeculation,
    ListSpeculations,
    Speculate,
)

if TYPE_CHECKING:
    from loomkin.core.events.base import JSON
    from loomkin.service import SpeculationInfo

__all__ = ["speculation_router"]


def _ctx(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(_ctx)]
speculation_router = APIRouter(tags=["speculation"])
_TASK = "/api/sessions/{session_id}/tasks/{task_id}"


class AssumptionIn(BaseModel):
    """One assumption: ``key`` + ``value`` (structured) or ``text`` (prose)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    on_task: str | None = Field(default=None, max_length=200)
    key: str = Field(default="", max_length=200)
    value: JsonValue = None
    text: str = Field(default="", max_length=4000)

    def plain(self) -> dict[str, JSON]:
        """The assumption as the facade takes it."""
        out: dict[str, JSON] = {"key": self.key, "text": self.text, "value": self.value}  # type: ignore[dict-item]
        if self.on_task is not None:
            out["on_task"] = self.on_task
        return out


class SpeculateIn(BaseModel):
    """Start a task ahead of its blockers on ``agent``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    agent: str = Field(min_length=1, max_length=200)
    assumptions: list[AssumptionIn] = Field(min_length=1, max_length=50)


class SpeculationOut(BaseModel):
    """A task's speculation: state, assumptions, verdicts, the decision and the outcome."""

    task_id: str
    title: str
    state: str
    agent: str
    blockers: list[str]
    blocker_titles: list[str]
    workspace: str
    assumptions: list[dict[str, JsonValue]]
    verdicts: list[dict[str, JsonValue]]
    decision: dict[str, JsonValue] | None
    outcome: dict[str, JsonValue] | None
    judgements: list[dict[str, JsonValue]]
    at_stake: dict[str, JsonValue] | None


class SpeculationsOut(BaseModel):
    """Every speculation of a session, with the counts, waste and learnt hit rates.

    ``summary.waste_fraction`` is discarded work ÷ all work, counted in model tokens: the
    tokens of discarded speculative work over those of every model call of the session.
    """

    speculations: list[SpeculationOut]
    summary: dict[str, JsonValue]


class AssumptionOut(BaseModel):
    """The id of a recorded assumption."""

    assumption_id: str


_CANCELLED: TypeAdapter[dict[str, str]] = TypeAdapter(dict[str, str])


def _out(info: SpeculationInfo) -> SpeculationOut:
    return SpeculationOut.model_validate(asdict(info))


@speculation_router.get("/api/sessions/{session_id}/speculations", response_model=SpeculationsOut)
async def list_speculations(ctx: Ctx, session_id: str) -> SpeculationsOut:
    """Speculative tasks of the session (running, merged, discarded, declined)."""
    if (cluster := ctx.acting(session_id)) is not None:  # it runs on a worker: over NATS
        return await cluster.act(session_id, ListSpeculations(), SpeculationsOut.model_validate)
    session = ctx.loomkin.session(session_id)
    return SpeculationsOut(
        speculations=[_out(i) for i in session.speculations()],
        summary=asdict(session.speculation_summary()),
    )


@speculation_router.post(f"{_TASK}/speculate", response_model=SpeculationOut, status_code=201)
async def speculate(ctx: Ctx, session_id: str, task_id: str, body: SpeculateIn) -> SpeculationOut:
    """Start the task on ``agent`` before its blockers finish, on the stated assumptions."""
    assumptions = [a.plain() for a in body.assumptions]
    if (cluster := ctx.acting(session_id)) is not None:
        action = Speculate.of(task_id=task_id, agent=body.agent, assumptions=assumptions)
        return await cluster.act(session_id, action, SpeculationOut.model_validate)
    session = ctx.loomkin.session(session_id)
    return _out(await session.speculate(task_id, body.agent, assumptions))


@speculation_router.post(f"{_TASK}/assumptions", response_model=AssumptionOut, status_code=201)
async def add_assumption(
    ctx: Ctx, session_id: str, task_id: str, body: AssumptionIn
) -> AssumptionOut:
    """Add an assumption to the task's running speculation."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = AddAssumption.of(task_id=task_id, assumption=body.plain())
        return await cluster.act(session_id, action, AssumptionOut.model_validate)
    session = ctx.loomkin.session(session_id)
    return AssumptionOut(assumption_id=await session.add_assumption(task_id, body.plain()))


@speculation_router.post(f"{_TASK}/speculation/cancel", status_code=202)
async def cancel_speculation(ctx: Ctx, session_id: str, task_id: str) -> dict[str, str]:
    """Discard the task's running speculation (workspace removed, task re-queued)."""
    if (cluster := ctx.acting(session_id)) is not None:
        action = CancelSpeculation.of(task_id=task_id)
        return await cluster.act(session_id, action, _CANCELLED.validate_python)
    await ctx.loomkin.session(session_id).cancel_speculation(task_id)
    return {"task_id": task_id, "state": "discarded"}

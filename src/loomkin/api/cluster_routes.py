"""``GET /api/cluster``: the workers of the cluster this server shows, and where sessions run.

A server started without ``--bus`` answers with ``cluster: null`` (the page hides its panel).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from loomkin.api.routes import Ctx  # noqa: TC001 - FastAPI reads the annotation at runtime

__all__ = ["ClusterOut", "cluster_router"]

cluster_router = APIRouter()


class WorkerOut(BaseModel):
    """A live worker and its last reported load."""

    worker_id: str
    agents: int
    sessions: int
    capacity: int
    accepting: bool
    """False while it shuts down (it gets no new work)."""


class PlacementOut(BaseModel):
    """A session the cluster ran or runs."""

    session_id: str
    title: str
    status: str
    """``running`` (hosted by ``worker_id``) or ``done``."""
    worker_id: str
    hosts: list[str]
    """Every worker that hosted it, in order (a failover adds one)."""
    agents: int


class ClusterOut(BaseModel):
    """The cluster of a server started with ``--bus`` (``cluster`` null without one)."""

    cluster: str | None
    workers: list[WorkerOut]
    sessions: list[PlacementOut]


@cluster_router.get("/api/cluster", response_model=ClusterOut, tags=["cluster"])
async def get_cluster(ctx: Ctx) -> ClusterOut:
    """The live workers with their load, and every session of the cluster with where it runs."""
    view = ctx.cluster
    if view is None:
        return ClusterOut(cluster=None, workers=[], sessions=[])
    titles = {s.session_id: s.title for s in ctx.loomkin.sessions()}
    workers = [
        WorkerOut(
            worker_id=w.worker_id,
            agents=w.agents,
            sessions=w.sessions,
            capacity=w.capacity,
            accepting=w.accepting,
        )
        for w in sorted(await view.workers(), key=lambda w: w.worker_id)
    ]
    sessions = [
        PlacementOut(
            session_id=p.session_id,
            title=titles.get(p.session_id, ""),
            status=p.status,
            worker_id=p.worker_id,
            hosts=list(p.hosts),
            agents=p.agents,
        )
        for p in await view.placements()
    ]
    return ClusterOut(cluster=view.name, workers=workers, sessions=sessions)

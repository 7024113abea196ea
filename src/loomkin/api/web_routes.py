"""Routes of the page's own views: the server's identity, the feed's tail, tasks, timeline.

Each reads the facade only (``loomkin.service``); the views folded from a whole log
(timeline, task history, run summary) are computed on request, when the page opens them.
Every view works for a session this server does not host (read-only, as its log left it).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from loomkin.api.feed import feed_row
from loomkin.api.routes import MAX_POSITION, Ctx
from loomkin.api.schemas import FeedRowOut, SessionOut
from loomkin.api.schemas_web import (
    FeedTail,
    LaneOut,
    RunSummaryOut,
    ServerOut,
    SpanOut,
    SpendPointOut,
    TaskDetailOut,
    TaskEventOut,
    TimelineOut,
)
from loomkin.api.summary import run_summary
from loomkin.api.timeline import build_timeline, task_history
from loomkin.api.views import session_out
from loomkin.core.events import PartialResultPublished, TaskStatusChanged
from loomkin.errors import NotFound, PolicyRefused

__all__ = ["web_router"]

web_router = APIRouter()


@web_router.get("/api/server", response_model=ServerOut, tags=["sessions"])
async def server_info(ctx: Ctx) -> ServerOut:
    """This server process: its id (changes on restart) and the sessions it hosts."""
    hosted = [s.session_id for s in ctx.loomkin.sessions() if ctx.session_out(s).open]
    return ServerOut(server_id=ctx.server_id, started_at=ctx.started_at, open_sessions=hosted)


@web_router.get("/api/sessions/{session_id}/feed/tail", response_model=FeedTail, tags=["feed"])
async def feed_tail(
    ctx: Ctx,
    session_id: str,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_POSITION, description="Rows before this position (default: newest)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=2000, description="Events to read at most.")] = 300,
    kinds: Annotated[
        str | None,
        Query(max_length=2000, description="Only these event kinds (comma-separated)."),
    ] = None,
    scan: Annotated[
        int | None,
        Query(ge=1, le=MAX_POSITION, description="Look at most this many positions back."),
    ] = None,
) -> FeedTail:
    """The newest feed rows (before ``before``), oldest first.

    A page loads the end of a long session at once and pages back on scroll, never
    reading the log from position 0.
    """
    wanted = frozenset(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None
    newest = ctx.loomkin.last_position  # read first: a live stream resumes after it
    events = await ctx.loomkin.history_before(
        session_id, before=before or newest + 1, limit=limit, kinds=wanted, scan=scan
    )
    names = ctx.names()
    rows = [FeedRowOut(**asdict(r)) for e in events if (r := feed_row(e, names)) is not None]
    end = newest if before is None else before - 1
    first = events[0].position if events else (before or end + 1)
    if scan is not None and len(events) < limit:
        first = max(1, end + 1 - scan)  # searched this far back: continue from there
    return FeedTail(
        rows=rows,
        first_position=first,
        last_position=events[-1].position if before is not None and events else end,
        more=len(events) >= limit or (scan is not None and first > 1),
    )


@web_router.get(
    "/api/sessions/{session_id}/tasks/{task_id}", response_model=TaskDetailOut, tags=["sessions"]
)
async def task_detail(ctx: Ctx, session_id: str, task_id: str) -> TaskDetailOut:
    """One task: description, status history, partial results, result and hand-off."""
    tasks = {t.task_id: t for t in ctx.loomkin.tasks(session_id)}
    task = tasks.get(task_id)
    if task is None:
        raise NotFound(f"no task {task_id!r} in session {session_id!r}")
    names = ctx.names()
    deps = ctx.loomkin.stored_dependencies(session_id)
    title = {k: v.title for k, v in tasks.items()}
    history = []
    for recorded in task_history(await ctx.loomkin.history(session_id), task_id):
        row = feed_row(recorded, names)
        if row is None:
            continue
        event = recorded.event
        detail = ""
        if isinstance(event, PartialResultPublished):
            detail = event.content
        elif isinstance(event, TaskStatusChanged):
            detail = event.result or event.note
        history.append(
            TaskEventOut(
                position=row.position,
                recorded_at=row.recorded_at,
                kind=row.kind,
                actor=row.actor,
                summary=row.summary,
                detail=detail,
            )
        )
    return TaskDetailOut(
        task_id=task.task_id,
        title=task.title,
        description=task.description,
        status=task.status,
        owner=task.owner,
        priority=task.priority,
        effective_priority=task.effective_priority,
        milestones=list(task.milestones),
        result=task.result,
        handoff=task.handoff.lines() if task.handoff is not None else [],
        depends_on=[
            f"{title.get(d.depends_on, d.depends_on)} ({d.kind})"
            for d in deps
            if d.task_id == task_id
        ],
        dependents=[
            f"{title.get(d.task_id, d.task_id)} ({d.kind})" for d in deps if d.depends_on == task_id
        ],
        history=history,
    )


@web_router.get(
    "/api/sessions/{session_id}/timeline", response_model=TimelineOut, tags=["sessions"]
)
async def timeline(ctx: Ctx, session_id: str) -> TimelineOut:
    """Agents × time (model calls, tool calls, tasks) and tokens and cost over time."""
    titles = {t.task_id: t.title for t in ctx.loomkin.tasks(session_id)}
    built = build_timeline(await ctx.loomkin.history(session_id), titles)
    return TimelineOut(
        start=built.start,
        end=built.end,
        lanes=[LaneOut(**asdict(lane)) for lane in built.lanes],
        spans=[SpanOut(**asdict(span)) for span in built.spans],
        spend=[SpendPointOut(**asdict(point)) for point in built.spend],
    )


@web_router.get(
    "/api/sessions/{session_id}/report", response_model=RunSummaryOut, tags=["sessions"]
)
async def report(ctx: Ctx, session_id: str) -> RunSummaryOut:
    """The run summary: files changed with diffs, decisions, tasks by status, spend."""
    stored = ctx.loomkin.stored_session(session_id)
    folded = run_summary(await ctx.loomkin.history(session_id), stored.project_root)
    tasks: dict[str, int] = {}
    for task in ctx.loomkin.tasks(session_id):
        tasks[task.status] = tasks.get(task.status, 0) + 1
    data = asdict(folded)
    return RunSummaryOut(session=_out(ctx, session_id), tasks=tasks, **data)


@web_router.post("/api/sessions/{session_id}/resume", response_model=SessionOut, tags=["sessions"])
async def resume_session(ctx: Ctx, session_id: str) -> SessionOut:
    """Resume a stored session in this server (the page's "Resume here" on a read-only view).

    Only for a project under the server's roots, with the session's own model on the
    server's model server (``--base-url``/``--api-key-env``, if it was given one), as
    ``loomkin serve --session`` would. Refused (409) while another live process runs it.
    """
    stored = ctx.loomkin.stored_session(session_id)
    if ctx.cluster is not None and not stored.open:
        # This server's runtime only watches the cluster's store: it hosts nothing itself.
        raise PolicyRefused(
            f"this server shows the cluster {ctx.cluster.name!r}: its sessions run on its "
            "workers (a stopped one is resumed there after a failover), not in the server"
        )
    if not stored.open:
        launch = ctx.launch
        await asyncio.to_thread(launch.project, stored.project_root)
        await ctx.loomkin.resume_session(
            session_id, base_url=launch.base_url, api_key_env=launch.api_key_env
        )
    return _out(ctx, session_id)


def _out(ctx: Ctx, session_id: str) -> SessionOut:
    return session_out(ctx.loomkin.stored_session(session_id))

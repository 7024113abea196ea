"""The HTTP routes: each one turns a request into one call on the public runtime API."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse
from sse_starlette import EventSourceResponse

from loomkin.api.feed import FeedRow, feed_row
from loomkin.api.launch import LaunchPolicy
from loomkin.api.schemas import (
    ControlOut,
    ErrorOut,
    FeedPage,
    FeedRowOut,
    InspectOut,
    McpServerOut,
    McpToolOut,
    MessageIn,
    MessageOut,
    PauseIn,
    PermissionAnswerIn,
    SessionCreateIn,
    SessionDetail,
    SessionOut,
    SteerIn,
    SummaryOut,
)
from loomkin.api.views import session_detail, session_out, stored_detail
from loomkin.cluster.actions import InspectAgent
from loomkin.errors import PolicyRefused, UserError
from loomkin.ids import new_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from loomkin.api.cluster_view import ClusterView
    from loomkin.core.events import RecordedEvent
    from loomkin.service import AgentInfo, EventStream, Loomkin, Names, Session, StoredSession

__all__ = ["ApiContext", "router"]

FEED_BUFFER = 1000
"""Bound of a live stream's buffer; on overflow it re-reads the log (nothing is lost)."""
PING_S = 15
"""Seconds between keep-alive comments on an idle live stream."""


class ApiContext:
    """What the routes share: the runtime, the server's bounds and the open live streams."""

    def __init__(
        self,
        *,
        loomkin: Loomkin,
        token: str | None,
        launch: LaunchPolicy | None = None,
        cluster: ClusterView | None = None,
    ) -> None:
        self.loomkin = loomkin
        self.token = token
        self.launch = launch or LaunchPolicy()
        self.cluster = cluster
        """With ``serve --bus``: the cluster whose workers run the sessions shown here."""
        self.streams: set[EventStream] = set()
        self.server_id = new_id("srv_")
        """This server's identity: a page that sees another one knows the server restarted."""
        self.started_at = time.time()

    def close_streams(self) -> None:
        """End every live stream (at shutdown)."""
        for sub in list(self.streams):
            sub.close()
        self.streams.clear()

    def names(self) -> Names:
        """Name lookups for feed rows."""
        return self.loomkin.names()

    def remote(self, session_id: str) -> ClusterView | None:
        """The cluster, when ``session_id`` runs on one of its workers (not in this process)."""
        cluster = self.cluster
        if cluster is None or not cluster.runs(session_id):
            return None
        return None if self.loomkin.stored_session(session_id).open else cluster

    def acting(self, session_id: str) -> ClusterView | None:
        """Where an action on ``session_id`` goes: the cluster, or ``None`` for this runtime.

        Raises:
            NotFound: no such session in the store.
            PolicyRefused: this server shows a cluster and no worker of it runs the session
                (this runtime only watches: it changes nothing of a stored session).
        """
        cluster = self.remote(session_id)
        if cluster is None and self.cluster is not None:
            stored = self.loomkin.stored_session(session_id)
            if not stored.open:
                raise PolicyRefused(
                    f"session {session_id} runs on no worker of the cluster "
                    f"{self.cluster.name!r} now ({stored.status}): its budgets, tasks and "
                    "speculations change only while a worker runs it"
                )
        return cluster

    def session_out(self, stored: StoredSession) -> SessionOut:
        """A session of the list (``open`` too when it runs on a worker of the cluster)."""
        out = session_out(stored)
        if not out.open and self.remote(stored.session_id) is not None:
            out = out.model_copy(update={"open": True})
        return out


def _ctx(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(_ctx)]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 421, 422)
}
MAX_POSITION = 2**63 - 1
"""Largest log position (the stores keep positions as signed 64-bit integers)."""
router = APIRouter(responses=_ERRORS)


def _session(ctx: ApiContext, session_id: str) -> Session:
    return ctx.loomkin.session(session_id)


def _agent(session: Session, ref: str) -> AgentInfo:
    """Find an agent by id, ``name`` or ``team/name`` (``NotFound`` lists the agents)."""
    return session.agent(ref)


# -- page ------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The web app (``/?session=ID`` opens one session; default: the newest).

    The page and its assets need no token (they hold no state; see ``access.py``), so the
    token is never written into the page: the script takes it from ``?token=``.
    """
    text = (resources.files("loomkin.api") / "static" / "index.html").read_text("utf-8")
    return HTMLResponse(text.replace("{{ASSET_QUERY}}", ""))


# -- sessions --------------------------------------------------------------------------------


@router.get("/api/sessions", response_model=list[SessionOut], tags=["sessions"])
async def list_sessions(ctx: Ctx) -> list[SessionOut]:
    """Every session in the store, oldest first (``open``: can be driven from here)."""
    return [ctx.session_out(stored) for stored in ctx.loomkin.sessions()]


@router.post("/api/sessions", response_model=SessionOut, status_code=201, tags=["sessions"])
async def create_session(ctx: Ctx, body: SessionCreateIn) -> SessionOut:
    """Open a new session on a project under the server's roots (``--allow-root``).

    The project's ``loomkin.toml`` applies (permissions, limits, budgets, model). A
    ``base_url`` must be the one the server was started with (``--base-url``).
    """
    launch = ctx.launch
    root = await asyncio.to_thread(launch.project, body.project)
    choice = await asyncio.to_thread(launch.model_choice, root, body.model, body.base_url)
    if ctx.cluster is not None:  # on the least-loaded worker, never in this process
        session_id = await ctx.cluster.start_session(
            str(root), model=choice.model, title=body.title
        )
        return ctx.session_out(ctx.loomkin.stored_session(session_id))
    session = await ctx.loomkin.open_session(
        root,
        model=choice.model,
        base_url=choice.base_url,
        api_key_env=choice.api_key_env,
        title=body.title,
    )
    return session_out(ctx.loomkin.stored_session(session.session_id))


@router.get("/api/sessions/{session_id}", response_model=SessionDetail, tags=["sessions"])
async def get_session(ctx: Ctx, session_id: str) -> SessionDetail:
    """Agents, team tree, tasks and dependencies, budgets and open permission prompts.

    A stored session this server does not host is shown read-only (``session.open`` false).
    """
    if not ctx.loomkin.stored_session(session_id).open:
        detail = await stored_detail(ctx.loomkin, session_id)
        return await ctx.cluster.detail(detail) if ctx.cluster is not None else detail
    return session_detail(ctx.loomkin, _session(ctx, session_id))


@router.get("/api/sessions/{session_id}/summary", response_model=SummaryOut, tags=["sessions"])
async def get_summary(ctx: Ctx, session_id: str) -> SummaryOut:
    """Files changed, tasks by status, decisions, tokens and cost so far."""
    s = await _session(ctx, session_id).summary()
    return SummaryOut(
        files_changed=list(s.files_changed),
        tasks=s.tasks,
        decisions=list(s.decisions),
        input_tokens=s.input_tokens,
        output_tokens=s.output_tokens,
        cost_usd=s.cost_usd,
        model_calls=s.model_calls,
        cached_input_tokens=s.cached_input_tokens,
    )


@router.post(
    "/api/sessions/{session_id}/messages",
    response_model=MessageOut,
    status_code=202,
    tags=["sessions"],
)
async def send_message(ctx: Ctx, session_id: str, body: MessageIn) -> MessageOut:
    """Send the user's message to the Concierge (or to the agent named ``to``)."""
    if (cluster := ctx.remote(session_id)) is not None:
        return MessageOut(message_id=await cluster.send(session_id, body.text, to=body.to))
    session = _session(ctx, session_id)
    to = _agent(session, body.to).agent_id if body.to else None
    return MessageOut(message_id=await session.send(body.text, to=to))


@router.get("/api/sessions/{session_id}/mcp", response_model=list[McpServerOut], tags=["sessions"])
async def list_mcp_servers(ctx: Ctx, session_id: str) -> list[McpServerOut]:
    """The session's MCP tool servers: state, restarts, last error and tools."""
    return [
        McpServerOut(
            name=s.name,
            transport=s.transport,
            target=s.target,
            permission=s.permission,
            roles=list(s.roles),
            status=s.status,
            restarts=s.restarts,
            error=s.error,
            tools=[McpToolOut(name=t.name, description=t.description) for t in s.tools],
        )
        for s in _session(ctx, session_id).mcp_servers()
    ]


# -- feed ------------------------------------------------------------------------------------


@router.get("/api/sessions/{session_id}/feed", response_model=FeedPage, tags=["feed"])
async def get_feed(
    ctx: Ctx,
    session_id: str,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Rows after this log position.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=5000, description="Events to read at most.")] = 500,
) -> FeedPage:
    """Feed rows after a position, oldest first (for catch-up and scripts)."""
    events = await ctx.loomkin.history(session_id, after=after, limit=limit)
    names = ctx.names()
    rows = [_row_out(r) for e in events if (r := feed_row(e, names)) is not None]
    return FeedPage(rows=rows, last_position=events[-1].position if events else after)


def _row_out(row: FeedRow) -> FeedRowOut:
    return FeedRowOut(**asdict(row))


@router.get(
    "/api/sessions/{session_id}/events",
    tags=["feed"],
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Feed rows as SSE."}},
)
async def stream_events(
    ctx: Ctx,
    session_id: str,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Start after this log position.")
    ] = 0,
    follow: Annotated[bool, Query(description="Keep streaming live events.")] = True,
    last_event_id: Annotated[str | None, Header(description="Set by EventSource.")] = None,
) -> EventSourceResponse:
    """Server-sent events: one ``row`` event per feed row, ``id`` = its log position.

    A reconnecting client sends ``Last-Event-ID`` (EventSource does it by itself) or
    ``after``, and gets every row after it: nothing is missed, nothing repeated.
    """
    start = _resume_position(after, last_event_id)
    if follow:
        sub = ctx.loomkin.events(session_id, after=start, maxsize=FEED_BUFFER)
        ctx.streams.add(sub)
        return EventSourceResponse(_follow(ctx, sub), ping=PING_S)
    events = await ctx.loomkin.history(session_id, after=start)
    return EventSourceResponse(_replay(ctx, events), ping=PING_S)


def _resume_position(after: int, last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after
    text = last_event_id.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise UserError(f"Last-Event-ID must be a log position, got {last_event_id[:40]!r}")
    position = int(text)
    if position > MAX_POSITION:
        raise UserError(f"Last-Event-ID must be at most {MAX_POSITION}, got {text}")
    return position


async def _follow(ctx: ApiContext, sub: EventStream) -> AsyncIterator[dict[str, str]]:
    names = ctx.names()
    try:
        async for recorded in sub:
            message = _sse(recorded, names)
            if message is not None:
                yield message
    finally:
        sub.close()
        ctx.streams.discard(sub)


async def _replay(ctx: ApiContext, events: list[RecordedEvent]) -> AsyncIterator[dict[str, str]]:
    names = ctx.names()
    for recorded in events:
        message = _sse(recorded, names)
        if message is not None:
            yield message


def _sse(recorded: RecordedEvent, names: Names) -> dict[str, str] | None:
    row = feed_row(recorded, names)
    if row is None:
        return None
    return {"id": str(row.position), "event": "row", "data": json.dumps(asdict(row))}


# -- agents ----------------------------------------------------------------------------------

_AGENT = "/api/sessions/{session_id}/agents/{agent:path}"


@router.post(f"{_AGENT}/pause", response_model=ControlOut, status_code=202, tags=["agents"])
async def pause_agent(
    ctx: Ctx, session_id: str, agent: str, body: PauseIn | None = None
) -> ControlOut:
    """Pause at the next checkpoint (``asap``) or step boundary (``at_boundary``)."""
    options = body or PauseIn()
    if (cluster := ctx.remote(session_id)) is not None:
        return await cluster.control(
            session_id, agent, "pause", mode=options.mode, force=options.force
        )
    session = _session(ctx, session_id)
    found = _agent(session, agent)
    request_id = await session.pause(found.agent_id, mode=options.mode, force=options.force)
    return ControlOut(request_id=request_id, agent_id=found.agent_id, action="pause")


@router.post(f"{_AGENT}/resume", response_model=ControlOut, status_code=202, tags=["agents"])
async def resume_agent(ctx: Ctx, session_id: str, agent: str) -> ControlOut:
    """Resume a paused agent from its checkpoint."""
    if (cluster := ctx.remote(session_id)) is not None:
        return await cluster.control(session_id, agent, "resume")
    session = _session(ctx, session_id)
    found = _agent(session, agent)
    request_id = await session.resume(found.agent_id)
    return ControlOut(request_id=request_id, agent_id=found.agent_id, action="resume")


@router.post(f"{_AGENT}/steer", response_model=ControlOut, status_code=202, tags=["agents"])
async def steer_agent(ctx: Ctx, session_id: str, agent: str, body: SteerIn) -> ControlOut:
    """Guidance that lands in the agent's very next model call."""
    if (cluster := ctx.remote(session_id)) is not None:
        return await cluster.control(session_id, agent, "steer", text=body.text, mode=body.mode)
    session = _session(ctx, session_id)
    found = _agent(session, agent)
    request_id = await session.steer(found.agent_id, body.text, mode=body.mode)
    return ControlOut(request_id=request_id, agent_id=found.agent_id, action="steer")


@router.post(f"{_AGENT}/cancel", response_model=ControlOut, status_code=202, tags=["agents"])
async def cancel_agent(ctx: Ctx, session_id: str, agent: str) -> ControlOut:
    """Cancel the agent's current task (its partial result is kept)."""
    if (cluster := ctx.remote(session_id)) is not None:
        return await cluster.control(session_id, agent, "cancel")
    session = _session(ctx, session_id)
    found = _agent(session, agent)
    request_id = await session.cancel(found.agent_id)
    return ControlOut(request_id=request_id, agent_id=found.agent_id, action="cancel")


@router.get(f"{_AGENT}/inspect", response_model=InspectOut, tags=["agents"])
async def inspect_agent(ctx: Ctx, session_id: str, agent: str) -> InspectOut:
    """A snapshot of the agent: messages, step, tool, task, iteration, usage."""
    if (cluster := ctx.acting(session_id)) is not None:  # it runs on a worker: over NATS
        action = InspectAgent.of(agent=agent)
        return await cluster.act(session_id, action, InspectOut.model_validate)
    session = _session(ctx, session_id)
    found = _agent(session, agent)
    snapshot = await session.inspect(found.agent_id)
    return InspectOut(agent_id=found.agent_id, snapshot=json.loads(json.dumps(asdict(snapshot))))


# -- permissions -----------------------------------------------------------------------------


@router.post(
    "/api/sessions/{session_id}/permissions/{request_id}",
    status_code=204,
    response_class=Response,
    tags=["permissions"],
)
async def answer_permission(
    ctx: Ctx, session_id: str, request_id: str, body: PermissionAnswerIn
) -> Response:
    """Answer a permission prompt: ``deny``, ``allow_once`` or ``allow_always``."""
    if (cluster := ctx.remote(session_id)) is not None:
        await cluster.answer(session_id, request_id, body.decision)
        return Response(status_code=204)
    await _session(ctx, session_id).answer_permission(request_id, body.decision)
    return Response(status_code=204)

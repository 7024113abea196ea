"""Budget, task, speculation and coordination routes act on a session a worker hosts.

The app of ``serve --bus`` (a runtime that only watches the shared store) sends each one to
the worker holding the session as one typed action over NATS; the worker applies it on its
session and answers with the result or the facade's refusal. The agents of the session
here wait at a gate the test opens at its end, so the session runs (and its tasks keep
their state) while the routes are called. Real NATS and Postgres, a worker in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.cluster.bus import connect
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import (
    BudgetsChanged,
    NegotiationCountered,
    RendezvousCreated,
    SpeculationDiscarded,
    TaskClaimed,
    TeamScaleSet,
)
from loomkin.ids import AgentId, SessionId, TeamId
from loomkin.tasks import WorkerRef
from loomkin.testing.internals import session_runtime
from loomkin.testing.models import Call, FunctionModel, Reply

from .coders import options, served, start_worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import httpx

    from loomkin.api import ClusterView
    from loomkin.cluster import ClusterClient, Worker
    from loomkin.core.events import Event
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(150)]


class Gate:
    """Holds every agent's work on a task until the test opens it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.working: dict[str, asyncio.Event] = {}
        """Per agent name: set once it works on a task (and waits at the gate)."""

    def factory(self, _role: object, name: str) -> Model:
        if name == "cat":
            return FunctionModel(decline, name="scripted:cat")
        if name == "lea":
            return FunctionModel(lambda _request: Reply(text="Noted."), name="scripted:lea")
        working = self.working.setdefault(name, asyncio.Event())

        async def step(request: ModelRequest) -> Reply:
            """Wait for the gate on a task given; then complete it, and say so once done."""
            briefs = [
                i
                for i, m in enumerate(request.messages)
                if isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
            ]
            if not briefs:
                return Reply(text="Nothing to do.")
            after = request.messages[briefs[-1] :]
            if any(isinstance(m, ToolResultMessage) and m.name == "task_complete" for m in after):
                return Reply(text="Done.")
            working.set()
            await self.open.wait()
            return Reply(tool_calls=[Call("task_complete", {"result": "done"})])

        return FunctionModel(step, name=f"scripted:{name}")

    async def work(self, session: Session) -> None:
        """ann on ``blocker``, ``queued`` waiting behind it; ``dependent`` waits for ``blocker``.

        ``queued`` is given to ann once she works on ``blocker``, so she puts it aside. It
        names a role no idle agent has, so the scheduler steals it for nobody: it stays
        ready and not started until the user gives it to someone (a claim).
        """
        if session.tasks():
            return
        for name in ("ann", "ben", "spec", "cat", "dan"):
            await session.spawn_agent(name, "coder")
        await assigned_by_a_lead(session, "review", "cat")  # she objects to it
        blocker = await session.create_task("blocker", assign_to="ann")
        await asyncio.wait_for(self.working.setdefault("ann", asyncio.Event()).wait(), 30)
        await session.create_task("queued", assign_to="ann", role="reviewer")
        await session.create_task("dependent", depends_on=(blocker,))


async def assigned_by_a_lead(session: Session, title: str, to: str) -> None:
    """Give ``title`` to ``to`` as the lead ``lea``: an objection then waits for a decision.

    To one of the user's own assignments the policy answers at once.
    """
    lea = await session.spawn_agent("lea", "lead")
    owner = session.agent(to)
    await session_runtime(session).ctx.tasks.create(
        session_id=SessionId(session.session_id),
        team_id=TeamId(lea.team_id),
        title=title,
        assign_to=WorkerRef(
            agent_id=AgentId(owner.agent_id), name=to, team_id=TeamId(owner.team_id)
        ),
        assigned_by="lea",
    )


def decline(request: ModelRequest) -> Reply:
    """Object to a task given (once); wait for the user's decision."""
    briefed = any(
        isinstance(m, UserMessage) and m.text.startswith("[Task assigned]")
        for m in request.messages
    )
    if briefed and not any(isinstance(m, ToolResultMessage) for m in request.messages):
        return Reply(tool_calls=[Call("task_decline", {"reason": "not my kind of work"})])
    return Reply(text="Waiting.")


@contextlib.asynccontextmanager
async def hosting(bus_url: str, cluster: str, pg_url: str, gate: Gate) -> AsyncIterator[Worker]:
    settings = SessionSettings(bootstrap_orienter=False)
    node = await start_worker(
        bus_url,
        cluster,
        options(pg_url, factory=gate.factory, settings=settings, prepare=gate.work),
    )
    try:
        yield node
    finally:
        gate.open.set()
        await node.close()


async def started(
    http: httpx.AsyncClient, view: ClusterView, client: ClusterClient, project: Path
) -> str:
    """A session opened on the worker whose tasks are on the board, running for the page."""
    session_id, _ = await client.start_session(str(project), "", approve_all=True)
    await view.refresh()
    assert view.runs(session_id)
    tasks: dict[str, dict[str, object]] = {}
    while set(tasks) != {"blocker", "queued", "dependent", "review"}:  # ``work`` ran there
        await view.refresh()
        detail = (await http.get(f"/api/sessions/{session_id}")).json()
        tasks = {t["title"]: t for t in detail["tasks"]}
    return session_id


async def first(client: ClusterClient, session_id: str, kind: type[Event]) -> Event:
    async with contextlib.aclosing(client.follow(session_id)) as events:
        async for recorded in events:
            if isinstance(recorded.event, kind):
                return recorded.event
    raise AssertionError(f"the session ended without a {kind.__name__}")


def task_ids(detail: dict[str, list[dict[str, str]]]) -> dict[str, str]:
    return {t["title"]: t["task_id"] for t in detail["tasks"]}


async def test_budget_task_and_speculation_routes_act_on_a_session_a_worker_hosts(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    gate = Gate()
    async with (
        hosting(bus_url, cluster, pg_url, gate) as node,
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        session_id = await started(http, view, client, project)
        base = f"/api/sessions/{session_id}"
        detail = (await http.get(base)).json()
        tasks = task_ids(detail)

        # Budgets: set two limits; the worker's session has them, and the page shows them.
        raised = await http.post(f"{base}/budgets", json={"session_usd": 5, "team_tokens": 90000})
        assert raised.status_code == 200, raised.text
        out = raised.json()
        assert (out["limits"]["session_usd"], out["limits"]["team_tokens"]) == (5.0, 90000)
        assert out["resumed"] == []
        assert out["still_paused"] == []
        (session_row,) = [b for b in out["budgets"] if b["scope"] == "session"]
        assert session_row["limit_usd"] == 5.0
        listed = (await http.get(f"{base}/budgets")).json()
        assert next(b for b in listed if b["scope"] == "session")["limit_usd"] == 5.0
        assert any(b["scope"] == "team" and b["limit_tokens"] == 90000 for b in listed)
        shown = (await http.get(base)).json()["budgets"]
        assert next(b for b in shown if b["scope"] == "session")["limit_usd"] == 5.0
        changed = await first(client, session_id, BudgetsChanged)
        assert isinstance(changed, BudgetsChanged)
        assert (changed.session_usd, changed.team_tokens) == (5.0, 90000)

        # Tasks: ``queued`` waits behind ann's ``blocker``: ben claims it.
        claim = await http.post(f"{base}/tasks/{tasks['queued']}/claim", json={"agent": "ben"})
        assert claim.status_code == 200, claim.text
        ben = next(a for a in detail["agents"] if a["name"] == "ben")
        assert claim.json() == {
            "task_id": tasks["queued"],
            "agent_id": ben["agent_id"],
            "claimed": True,
        }
        claimed = await first(client, session_id, TaskClaimed)
        assert isinstance(claimed, TaskClaimed)
        assert (claimed.task_id, claimed.owner_name) == (tasks["queued"], "ben")
        # cat objected to ``review``: the user gives it to dan instead.
        await first(client, session_id, NegotiationCountered)
        negotiated = (await http.get(f"{base}/negotiations")).json()
        assert {(n["task_title"], n["agent_name"]) for n in negotiated} >= {("blocker", "ann")}
        still_open = (await http.get(f"{base}/negotiations?open=true")).json()
        countered = [(n["task_title"], n["status"]) for n in still_open if n["agent_name"] == "cat"]
        assert countered == [("review", "countered")]
        resolve = f"{base}/negotiations/{tasks['review']}/resolve"
        moved = await http.post(resolve, json={"resolution": "reassign", "agent": "dan"})
        assert moved.status_code == 200, moved.text
        assert "reassigned to dan" in moved.json()["result"]
        (decided,) = [
            n for n in (await http.get(f"{base}/negotiations")).json() if n["agent_name"] == "cat"
        ]
        assert (decided["status"], decided["new_owner_name"]) == ("reassigned", "dan")

        # Speculation: spec starts ``dependent`` ahead of ``blocker``; then it is cancelled.
        url = f"{base}/tasks/{tasks['dependent']}"
        assumption = {"key": "schema", "value": {"id": "int"}}
        body = {"agent": "spec", "assumptions": [assumption]}
        speculated = await http.post(f"{url}/speculate", json=body)
        assert speculated.status_code == 201, speculated.text
        assert speculated.json()["state"] == "running"
        assert speculated.json()["blockers"] == [tasks["blocker"]]
        added = await http.post(f"{url}/assumptions", json={"text": "ids stay ints"})
        assert added.status_code == 201, added.text
        assert added.json()["assumption_id"]
        running = (await http.get(f"{base}/speculations")).json()
        (one,) = running["speculations"]
        assert (one["title"], one["agent"], len(one["assumptions"])) == ("dependent", "spec", 2)
        assert running["summary"]["running"] == 1
        cancelled = await http.post(f"{url}/speculation/cancel", json={})
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json() == {"task_id": tasks["dependent"], "state": "discarded"}
        discarded = await first(client, session_id, SpeculationDiscarded)
        assert isinstance(discarded, SpeculationDiscarded)
        assert discarded.task_id == tasks["dependent"]

        gate.open.set()
        await asyncio.wait_for(client.wait_done(session_id), 60)
        await asyncio.wait_for(node.hosting_nothing(), 30)
        await view.refresh()
        # Done: nobody hosts it, so it takes no action (and this server changes nothing).
        late = await http.post(f"{base}/budgets", json={"session_usd": 9})
        assert late.status_code == 409, late.text
        assert "runs on no worker" in late.json()["detail"]
        assert (await http.get(f"{base}/speculations")).status_code == 409


async def test_refusals_cross_the_wire_with_their_status(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    gate = Gate()
    async with (
        hosting(bus_url, cluster, pg_url, gate),
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        session_id = await started(http, view, client, project)
        base = f"/api/sessions/{session_id}"
        tasks = task_ids((await http.get(base)).json())

        # Bad bodies are refused here, as for a session this server hosts.
        for bad in ({"session_usd": -1}, {"bogus": 1}, {"session_tokens": "many"}):
            assert (await http.post(f"{base}/budgets", json=bad)).status_code == 422
        # The worker's session refuses what the facade refuses, with the same status.
        none = await http.post(f"{base}/budgets", json={})
        assert none.status_code == 422
        assert "name at least one budget" in none.json()["detail"]
        started_task = f"{base}/tasks/{tasks['blocker']}/claim"
        assert (await http.post(started_task, json={"agent": "ben"})).status_code == 409
        nobody = await http.post(f"{base}/tasks/{tasks['queued']}/claim", json={"agent": "zed"})
        assert nobody.status_code == 404
        assert "zed" in nobody.json()["detail"]
        resolve = f"{base}/negotiations/{tasks['blocker']}/resolve"
        unasked = await http.post(resolve, json={"resolution": "accept"})
        assert unasked.status_code == 422  # as for a local session: ann did not object
        assert "has no objection waiting" in unasked.json()["detail"]
        assert (await http.post(resolve, json={"resolution": "shrug"})).status_code == 422
        gone = await http.post(f"{base}/tasks/task_nope/speculation/cancel", json={})
        assert gone.status_code == 404
        no_spec = await http.post(
            f"{base}/tasks/{tasks['dependent']}/assumptions", json={"text": "x"}
        )
        assert no_spec.status_code == 404
        too_long = await http.post(f"{base}/tasks/{'t' * 300}/speculation/cancel", json={})
        assert too_long.status_code == 422
        unknown = await http.post("/api/sessions/s_nope/budgets", json={"session_usd": 1})
        assert unknown.status_code == 404

        # The worker checks what arrives on the action subject itself.
        subject = client.names.session_action(session_id)
        nc = await connect(bus_url)
        try:
            for payload in (
                json.dumps({"kind": "drop_tables"}),
                json.dumps({"kind": "claim_task", "task_id": tasks["queued"]}),
                json.dumps({"kind": "budgets", "extra": True}),
                json.dumps({"kind": "raise_budgets", "changes": {"session_usd": True}}),
                "not json",
            ):
                reply = await nc.request(subject, payload.encode(), timeout=10)
                answer = json.loads(reply.data)
                assert (answer["ok"], answer["code"]) == (False, "invalid"), answer
        finally:
            await nc.close()
        history = [r.event for r in await client.history(session_id)]
        assert not any(isinstance(e, BudgetsChanged | TaskClaimed) for e in history)


async def test_a_session_whose_worker_is_gone_is_unavailable_not_an_error(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    gate = Gate()
    async with served(bus_url, cluster, pg_url, project, act_timeout_s=1.0) as (
        http,
        view,
        client,
    ):
        async with hosting(bus_url, cluster, pg_url, gate) as node:
            session_id = await started(http, view, client, project)
            await node.close()  # gives the session back, unfinished: it waits for a worker
        await view.refresh()
        assert view.runs(session_id)  # placed, running, hosted by nobody for now
        base = f"/api/sessions/{session_id}"
        moving = await http.post(f"{base}/budgets", json={"session_usd": 1})
        assert moving.status_code == 503, moving.text
        assert "no worker" in moving.json()["detail"]
        assert (await http.get(f"{base}/speculations")).status_code == 503
        detail = await http.get(base)  # the view still shows, with the log's budgets
        assert detail.status_code == 200


async def test_team_scale_rendezvous_and_inspect_act_on_a_session_a_worker_hosts(
    bus_url: str, cluster: str, pg_url: str, project: Path
) -> None:
    gate = Gate()
    async with (
        hosting(bus_url, cluster, pg_url, gate),
        served(bus_url, cluster, pg_url, project) as (http, view, client),
    ):
        session_id = await started(http, view, client, project)
        base = f"/api/sessions/{session_id}"

        scale = f"{base}/teams/root/scale"
        shown = await http.get(scale)
        assert shown.status_code == 200, shown.text
        assert (shown.json()["team_name"], shown.json()["pinned"]) == ("root", None)
        pinned = await http.post(scale, json={"pin": 2, "reason": "enough"})
        assert pinned.status_code == 200, pinned.text
        assert pinned.json()["pinned"] == 2
        assert (await http.post(scale, json={"min": 3, "max": 2})).status_code == 422
        assert (await http.get(f"{base}/teams/nope/scale")).status_code == 404

        opened = await http.post(
            f"{base}/rendezvous", json={"name": "sync", "participants": ["ann", "ben"]}
        )
        assert opened.status_code == 201, opened.text
        assert (opened.json()["name"], opened.json()["status"]) == ("sync", "open")
        joined = await http.post(f"{base}/rendezvous/sync/join", json={"agents": ["spec"]})
        assert joined.status_code == 200, joined.text
        assert joined.json() == {"added": ["spec"]}
        (listed,) = (await http.get(f"{base}/rendezvous")).json()
        assert sorted(listed["participants"]) == ["ann", "ben", "spec"]
        stranger = {"name": "late", "participants": ["zed"]}
        assert (await http.post(f"{base}/rendezvous", json=stranger)).status_code == 404

        inspected = await http.get(f"{base}/agents/ann/inspect")
        assert inspected.status_code == 200, inspected.text
        ann = next(a for a in (await http.get(base)).json()["agents"] if a["name"] == "ann")
        assert inspected.json()["agent_id"] == ann["agent_id"]
        assert inspected.json()["snapshot"]["messages"]
        assert (await http.get(f"{base}/agents/zed/inspect")).status_code == 404

        history = [r.event for r in await client.history(session_id)]
        assert [(e.pinned, e.reason) for e in history if isinstance(e, TeamScaleSet)] == [
            (2, "enough")
        ]
        assert [e.name for e in history if isinstance(e, RendezvousCreated)] == ["sync"]

"""Adaptive teams end to end (issue 16): the autoscaler, work stealing, bounds, the tools.

The bench's :class:`~loomkin.bench.swarm.WorkModel` stands in for the model of every worker:
it spends each task's work in virtual time and completes it with the real tools (and spends a
set time reading an onboarding brief). Everything else is the real runtime.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import SessionSettings
from loomkin.bench.swarm import WorkModel
from loomkin.bench.workloads import TaskSpec
from loomkin.coordination.autoscale import AutoscaleSettings
from loomkin.core.chat import UserMessage
from loomkin.core.events import (
    AgentSpawned,
    AgentStatusChanged,
    CapacityMoved,
    InsightShared,
    MessageSent,
    ScaleDecided,
    TaskAssigned,
    TaskClaimed,
    TaskStatusChanged,
    TeamScaleSet,
)
from loomkin.errors import InvalidTransition, UserError
from loomkin.ids import AgentId, TaskId
from loomkin.service import Loomkin
from loomkin.tasks import WorkerRef
from loomkin.testing.internals import task_service
from loomkin.testing.models import Call, FunctionModel, Reply, ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.agents.roles import Role
    from loomkin.core.events import RecordedEvent
    from loomkin.llm.model import Model, ModelRequest
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SCALING = AutoscaleSettings(
    enabled=True, window_s=5, cooldown_s=0, max_agents=4, retire_after_s=50, min_agents=1
)


async def _open(
    lk: Loomkin,
    project: Path,
    specs: dict[TaskId, TaskSpec],
    *,
    scaling: AutoscaleSettings = SCALING,
    special: dict[str, Model] | None = None,
) -> tuple[Session, list[ModelRequest]]:
    seen: list[ModelRequest] = []

    class Seen(WorkModel):
        async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def]
            seen.append(request)
            async for event in super().stream(request):
                yield event

    def factory(role: Role, name: str) -> Model:
        if special and name in special:
            return special[name]
        if role.name == "lead":
            return ScriptedModel([], name="scripted:lead")
        return Seen(specs, onboarding_s=30.0)

    settings = SessionSettings(
        bootstrap_orienter=False, autoscale=scaling, stream_idle_timeout_s=10_000
    )
    session = await lk.open_session(project, model_factory=factory, settings=settings)
    return session, seen


async def _tasks(session: Session, specs: dict[TaskId, TaskSpec], n: int, work: float) -> None:
    for k in range(n):
        title = f"module{k}"
        task_id = TaskId(await session.create_task(title, role="coder", work_s=work))
        specs[task_id] = TaskSpec(id=title, role="coder", work_s=work)


async def _settle(session: Session, seconds: float) -> list[RecordedEvent]:
    await session.wait_idle()
    await asyncio.sleep(seconds)  # virtual: the autoscaler's deadlines pass
    await session.wait_idle()
    return await session.history()


async def test_the_team_grows_with_its_backlog_and_shrinks_when_idle(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open("memory:") as lk:
        session, seen = await _open(lk, project, specs)
        await session.spawn_agent("lead", "lead")
        await _tasks(session, specs, 6, 100.0)
        await session.spawn_agent("worker", "coder")
        log = await _settle(session, 200.0)
        info = session.team_scale()
    events = [r.event for r in log]
    spawns = [e for e in events if isinstance(e, ScaleDecided) and e.action == "spawn"]
    assert spawns, "the autoscaler never grew the team"
    first = spawns[0]
    # 6 ready for 1 worker busy: grows to the ceiling of 4 workers, for the role asked
    assert len(first.agents) == 3
    assert first.role == "coder"
    assert first.max_size == 4
    assert first.ready >= 3
    assert first.threshold == 1.0
    assert "window 5s" in first.reason
    # one decision, one append: the decision, its agents, then their onboarding briefs
    at = next(i for i, r in enumerate(log) if r.event is first)
    batch = [r.event for r in log[at + 1 : at + 7]]
    assert [type(e) for e in batch] == [AgentSpawned] * 3 + [MessageSent] * 3
    assert all(isinstance(e, MessageSent) and e.msg_type == "onboarding" for e in batch[3:])
    # every task done once; a new agent read its brief before it was given work
    done = [e for e in events if isinstance(e, TaskStatusChanged) and e.status == "completed"]
    assert sorted(e.task_id for e in done) == sorted(specs)
    new_ids = set(first.agent_ids)
    for record in log:
        if isinstance(record.event, TaskAssigned) and record.event.owner in new_ids:
            before = [
                r.event
                for r in log[: record.position]
                if isinstance(r.event, AgentStatusChanged)
                and r.event.agent_id == record.event.owner
                and r.event.status == "idle"
            ]
            assert before, "a task went to an agent still reading its onboarding brief"
    briefs = [
        m.text
        for request in seen
        for m in request.messages
        if isinstance(m, UserMessage) and m.text.startswith("[Onboarding brief")
    ]
    assert briefs
    assert "Work waiting now" in briefs[0]
    assert "module" in briefs[0]
    # idle for retire_after_s with nothing waiting: retired down to the floor, never the lead
    retired = [e for e in events if isinstance(e, ScaleDecided) and e.action == "retire"]
    gone = {a for e in retired for a in e.agent_ids}
    assert len(gone) == 3
    lead = next(e for e in events if isinstance(e, AgentSpawned) and e.name == "lead")
    assert lead.agent_id not in gone
    assert info.workers == 1
    assert info.retires == 3
    assert info.spawns == 3
    # what the retired agents learned is in the team's knowledge
    legacies = [e for e in events if isinstance(e, InsightShared) and "retired" in e.text]
    assert legacies
    assert all("module" in e.text for e in legacies)


async def test_bounds_from_the_facade_pin_and_cap_the_team(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(lk, project, specs)
        await session.spawn_agent("worker", "coder")
        with pytest.raises(UserError, match="min 3 is above max 2"):
            await session.scale_team(min_agents=3, max_agents=2)
        pinned = await session.scale_team(pin=3, reason="three is enough")
        assert pinned.pinned == 3
        log = await _settle(session, 100.0)
        assert session.team_scale().workers == 3  # pinned: grown at once, never retired
        capped = await session.scale_team(max_agents=2)
        await _tasks(session, specs, 5, 50.0)
        log = await _settle(session, 400.0)
    events = [r.event for r in log]
    sets = [e for e in events if isinstance(e, TeamScaleSet)]
    assert [s.pinned for s in sets] == [3, None]
    assert capped.max_agents == 2
    holds = [e for e in events if isinstance(e, ScaleDecided) and e.action == "hold"]
    assert holds
    assert "size bound" in holds[0].reason
    done = [
        e.task_id for e in events if isinstance(e, TaskStatusChanged) and e.status == "completed"
    ]
    assert sorted(done) == sorted(specs)
    shrunk = [e for e in events if isinstance(e, ScaleDecided) and e.action == "retire"]
    assert shrunk
    assert "its size is between 0 and 2" in shrunk[0].reason
    assert max(e.size for e in events if isinstance(e, ScaleDecided) and e.action == "spawn") < 3


async def test_claims_are_compare_and_set(project: Path) -> None:
    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(lk, project, {}, scaling=AutoscaleSettings())
        tasks = task_service(lk)
        team = session.teams()[0].team_id
        task_id = TaskId(await session.create_task("queued work"))
        one = WorkerRef(agent_id=AgentId("agent-a"), name="a", team_id=team)  # type: ignore[arg-type]
        two = WorkerRef(agent_id=AgentId("agent-b"), name="b", team_id=team)  # type: ignore[arg-type]
        results = await asyncio.gather(
            tasks.claim(task_id, one, expected_owner=None, reason="a"),
            tasks.claim(task_id, two, expected_owner=None, reason="b"),
            return_exceptions=True,
        )
        assert sum(r is None for r in results) == 1
        loser = next(r for r in results if r is not None)
        assert isinstance(loser, InvalidTransition)
        assert "lost a race" in str(loser)
        await tasks.set_status(task_id, "in_progress", by=AgentId("agent-a"))
        with pytest.raises(InvalidTransition, match="not yet started"):
            await tasks.claim(task_id, two, expected_owner=AgentId("agent-a"), reason="b")
        log = await session.history()
    claims = [r.event for r in log if isinstance(r.event, TaskClaimed)]
    assert len(claims) == 1


async def test_idle_agents_steal_work_queued_on_a_busy_one(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(lk, project, specs, scaling=AutoscaleSettings())
        for name in ("ann", "bob", "cy"):
            await session.spawn_agent(name, "coder")
        for k in range(6):
            title = f"queued{k}"
            task_id = TaskId(await session.create_task(title, work_s=100.0, assign_to="ann"))
            specs[task_id] = TaskSpec(id=title, role="coder", work_s=100.0)
        await session.wait_idle()
        log = await session.history()
    events = [r.event for r in log]
    claims = [e for e in events if isinstance(e, TaskClaimed)]
    assert len(claims) == 4
    assert all("stolen from ann" in e.reason for e in claims)
    starts = [
        e.task_id for e in events if isinstance(e, TaskStatusChanged) and e.status == "in_progress"
    ]
    assert sorted(starts) == sorted(specs)  # each task started once: none worked twice
    done = [
        r for r in log if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
    ]
    first = log[0].recorded_at
    assert max(r.recorded_at for r in done) - first == pytest.approx(200.0, abs=1.0)


async def test_an_idle_agent_claims_with_the_task_claim_tool(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    claimed: list[str] = []

    async def bob(request: ModelRequest) -> Reply:
        last = request.messages[-1]
        if isinstance(last, UserMessage) and last.text.startswith("go"):
            await asyncio.sleep(10)  # thinking: the scheduler does not steal for a busy agent
            return Reply(tool_calls=[Call("task_claim", {})])
        if isinstance(last, UserMessage) and last.text.startswith("[Task assigned]"):
            claimed.append(last.text)
            return Reply(tool_calls=[Call("task_complete", {"result": "done by bob"})])
        return Reply("ok")

    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(
            lk,
            project,
            specs,
            scaling=AutoscaleSettings(),
            special={"bob": FunctionModel(bob, name="fn:bob")},
        )
        await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        await session.send("go and help", to="bob")
        bob_id = session.agent("bob").agent_id
        async with session.events(after=0) as sub:
            async for recorded in sub:  # bob is thinking before any work is queued
                event = recorded.event
                if (
                    isinstance(event, AgentStatusChanged)
                    and event.agent_id == bob_id
                    and event.status == "thinking"
                ):
                    break
        for k in range(2):
            title = f"job{k}"
            task_id = TaskId(await session.create_task(title, work_s=100.0, assign_to="ann"))
            specs[task_id] = TaskSpec(id=title, role="coder", work_s=100.0)
        await session.wait_idle()
        log = await session.history()
    claims = [r.event for r in log if isinstance(r.event, TaskClaimed)]
    assert len(claims) == 1
    assert claims[0].owner_name == "bob"
    assert "claimed by bob from ann" in claims[0].reason
    assert claimed
    assert "job1" in claimed[0]


async def test_ready_work_moves_to_an_idle_sibling_team(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(lk, project, specs)
        await session.create_team("alpha")
        await session.create_team("beta")
        await session.spawn_agent("al", "coder", team="alpha")
        await session.spawn_agent("bea", "coder", team="beta")
        await session.spawn_agent("ben", "coder", team="beta")
        await session.scale_team("alpha", max_agents=1)  # alpha may not grow: it must share
        await session.scale_team("beta", max_agents=2)
        for k in range(5):
            title = f"alpha{k}"
            task_id = TaskId(await session.create_task(title, team="alpha", work_s=100.0))
            specs[task_id] = TaskSpec(id=title, role="coder", work_s=100.0)
        log = await _settle(session, 10.0)
        beta = session.team_scale("beta")
    events = [r.event for r in log]
    moves = [e for e in events if isinstance(e, CapacityMoved)]
    assert len(moves) >= 2  # two at once (beta's two idle agents), more as beta frees up
    assert all(m.to_team == beta.team_id for m in moves)
    assert "sibling team 'beta' has 2 idle agent(s)" in moves[0].reason
    owners = {e.task_id: e.owner_name for e in events if isinstance(e, TaskAssigned)}
    assert {owners[m.task_id] for m in moves[:2]} == {"bea", "ben"}
    done = [
        e.task_id for e in events if isinstance(e, TaskStatusChanged) and e.status == "completed"
    ]
    assert sorted(done) == sorted(specs)
    assert not [e for e in events if isinstance(e, ScaleDecided) and e.action == "spawn"]


def test_the_tools_are_in_the_roles_that_need_them() -> None:
    from loomkin.agents.roles import BUILTIN_ROLES

    for worker in ("coder", "tester", "reviewer", "researcher", "lead", "concierge"):
        assert "task_claim" in BUILTIN_ROLES[worker].tools, worker
    assert "team_scale" in BUILTIN_ROLES["lead"].tools
    assert "team_scale" not in BUILTIN_ROLES["coder"].tools


async def test_a_lead_bounds_its_team_with_team_scale(project: Path) -> None:
    results: list[str] = []

    async def lead(request: ModelRequest) -> Reply:
        last = request.messages[-1]
        if isinstance(last, UserMessage):
            return Reply(
                tool_calls=[
                    Call("team_scale", {"pin": 2, "reason": "two coders suffice"}),
                    Call("team_scale", {"min": 3, "max": 1}),
                    Call("team_scale", {"team": "elsewhere", "max": 2}),
                ]
            )
        results.extend(str(getattr(m, "content", "")) for m in request.messages[-3:])
        return Reply(text="done")

    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(
            lk,
            project,
            {},
            scaling=AutoscaleSettings(),
            special={"boss": FunctionModel(lead, name="fn:boss")},
        )
        await session.create_team("other")
        await session.create_team("elsewhere", parent="other")  # not a sub-team of boss's
        await session.spawn_agent("boss", "lead")
        await session.send("size the team", to="boss")
        await session.wait_idle()
        log = await session.history()
        assert session.team_scale().pinned == 2
    sets = [r.event for r in log if isinstance(r.event, TeamScaleSet)]
    assert len(sets) == 1
    assert sets[0].by == "boss"
    assert sets[0].reason == "two coders suffice"
    text = "\n".join(results)
    assert "pinned at 2" in text
    assert "Refused: min 3 is above max 1" in text
    assert "your own team or one of its sub-teams" in text


async def test_work_meant_for_a_role_is_not_stolen_by_another(project: Path) -> None:
    specs: dict[TaskId, TaskSpec] = {}
    async with await Loomkin.open("memory:") as lk:
        session, _ = await _open(lk, project, specs, scaling=AutoscaleSettings())
        await session.spawn_agent("ann", "coder")
        await session.spawn_agent("tess", "tester")
        for k in range(3):
            title = f"code{k}"
            task_id = TaskId(
                await session.create_task(title, role="coder", work_s=50.0, assign_to="ann")
            )
            specs[task_id] = TaskSpec(id=title, role="coder", work_s=50.0)
        await session.wait_idle()
        log = await session.history()
    assert not [r for r in log if isinstance(r.event, TaskClaimed)]
    owners = {r.event.owner_name for r in log if isinstance(r.event, TaskAssigned)}
    assert owners == {"ann"}

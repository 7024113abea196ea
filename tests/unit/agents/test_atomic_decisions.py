"""Issue #15: a decision of several events is one append (one batch: all or none).

Each test records the batches the runtime hands the event log and checks that the events of
one decision travel together: a crash can then never leave half of it in the log (the store
writes a batch in one transaction; the conformance suite checks that part).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from loomkin.agents import Budgets, SessionSettings
from loomkin.ids import AgentId, TaskId, TeamId
from loomkin.tasks import WorkerRef
from loomkin.testing.internals import event_log, task_service
from loomkin.testing.models import Call, Reply, ScriptedModel

from .conftest import make_rig

if TYPE_CHECKING:
    from pathlib import Path

    from loomkin.core.events import Event
    from loomkin.service import Loomkin

pytestmark = pytest.mark.looptime

LONG = "".join(f"word{i:02d} " for i in range(40))


class Batches:
    """Every ``EventLog.append`` call's events, by kind (one list per call)."""

    def __init__(self, lk: Loomkin, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[Event]] = []
        log = event_log(lk)
        append = log.append

        async def recording(*events: Event) -> object:
            self.calls.append(list(events))
            return await append(*events)

        monkeypatch.setattr(log, "append", recording)

    def with_(self, kind: str, **fields: object) -> list[str]:
        """The kinds of the (one) batch holding an event of ``kind`` with these fields."""
        found = [
            [e.kind for e in call]
            for call in self.calls
            for e in call
            if e.kind == kind and all(getattr(e, k, None) == v for k, v in fields.items())
        ]
        assert len(found) == 1, f"{kind} {fields}: {found}"
        return found[0]


async def test_a_pause_and_the_status_it_puts_the_agent_in(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig(lk, project, ScriptedModel([Reply(text=LONG)], chunk_chars=4))
    batches = Batches(lk, monkeypatch)
    await rig.send("talk")
    await rig.wait_for("model_call_started")
    await rig.session.pause("worker")
    await lk.wait_idle()
    assert batches.with_("control_applied", action="pause") == [
        "control_applied",
        "agent_status_changed",
    ]
    # ... and a resume with the status it restores.
    await rig.session.resume("worker")
    await lk.wait_idle()
    assert batches.with_("control_applied", action="resume") == [
        "control_applied",
        "agent_status_changed",
    ]


async def test_a_cancel_the_task_it_ends_and_the_status(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig(lk, project, ScriptedModel([Reply(text=LONG)], chunk_chars=4))
    batches = Batches(lk, monkeypatch)
    await rig.session.create_task("write it", assign_to="worker")
    await rig.wait_for("model_call_started")
    await rig.session.cancel("worker")
    await lk.wait_idle()
    assert batches.with_("control_applied", action="cancel") == [
        "control_applied",
        "agent_status_changed",
        "task_status_changed",
    ]
    # The task was created and given in one batch too (never unassigned in between), with the
    # window its assignee has to negotiate the assignment.
    assert batches.with_("task_created") == [
        "task_created",
        "task_assigned",
        "negotiation_opened",
        "message_sent",
    ]


async def test_a_steer_and_its_transcript_entry(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ScriptedModel(
        [Reply(text=LONG), Reply(text="steered")], chunk_chars=4, chunk_delay_s=0.05
    )
    rig = await make_rig(lk, project, model)
    batches = Batches(lk, monkeypatch)
    await rig.send("talk")
    await rig.wait_for("model_call_started")
    await asyncio.sleep(0.2)
    await rig.session.steer("worker", "be brief")
    await lk.wait_idle()
    assert batches.with_("control_applied", action="steer") == [
        "transcript_appended",
        "control_applied",
    ]


async def test_a_budget_pause(lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[Call("file_read", {"path": "README.md"})], input_tokens=600)]
    )
    rig = await make_rig(
        lk,
        project,
        model,
        settings=SessionSettings(bootstrap_orienter=False, budgets=Budgets(agent_tokens=500)),
    )
    batches = Batches(lk, monkeypatch)
    await rig.send("read the README")
    await lk.wait_idle()
    paused = batches.with_("budget_exceeded")  # with the message asking the lead, if any
    assert (paused[0], paused[-1]) == ("budget_exceeded", "agent_status_changed")
    # A tool call starts with its status, and completes with its result and the next status.
    assert batches.with_("tool_call_started") == ["tool_call_started", "agent_status_changed"]
    assert batches.with_("tool_call_completed") == [
        "tool_call_completed",
        "agent_status_changed",
        "transcript_appended",
    ]


async def test_giving_up_on_an_agent_and_releasing_its_task(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig(lk, project, ScriptedModel([Reply(text="never asked")]))

    def broken() -> None:
        # A bug in the runtime itself (a model's failure is recorded, not a crash).
        raise RuntimeError("a bug in the budget check")

    monkeypatch.setattr(rig.agent, "budget_breach", broken)
    batches = Batches(lk, monkeypatch)
    await rig.session.create_task("write it", assign_to="worker")
    await lk.wait_idle()
    assert batches.with_("agent_failed_permanently") == [
        "agent_failed_permanently",
        "agent_status_changed",
        "task_status_changed",
    ]


async def test_the_end_of_a_loop_settles_its_task_and_replies(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = ScriptedModel([Reply(text="all done")] * 2)  # (asked once to complete the task)
    rig = await make_rig(lk, project, answers, role="concierge")
    batches = Batches(lk, monkeypatch)
    await rig.session.create_task("answer", assign_to="worker")
    await lk.wait_idle()
    assert batches.with_("loop_finished") == [
        "loop_finished",
        "assistant_replied",
        "task_status_changed",
    ]


async def test_dissolving_a_team_ends_its_agents_in_the_same_batch(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig(lk, project, ScriptedModel([]))
    await rig.session.create_team("squad")
    await rig.session.spawn_agent("sam", "coder", team="squad")
    await rig.session.spawn_agent("sue", "coder", team="squad")
    batches = Batches(lk, monkeypatch)
    squad = rig.session.teams()[-1].team_id
    teams = rig.agent.ctx.teams
    await teams.dissolve(TeamId(squad), reason="done", by=None)
    assert batches.with_("team_dissolved") == [
        "team_dissolved",
        "agent_status_changed",
        "agent_status_changed",
    ]


async def test_a_reassignment_releases_and_gives_in_one_batch(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make_rig(lk, project, ScriptedModel([Reply(text=LONG)], chunk_chars=4))
    peer = await rig.session.spawn_agent("peer", "coder")
    task_id = await rig.session.create_task("write it", assign_to="worker")
    await rig.wait_for("model_call_started")
    batches = Batches(lk, monkeypatch)
    worker = WorkerRef(
        agent_id=AgentId(peer.agent_id), name=peer.name, team_id=TeamId(peer.team_id)
    )
    note = rig.agent.ctx.messages.message("abort", "stop", to_agent=rig.agent.agent_id)
    moved = await task_service(lk).reassign(
        TaskId(task_id), worker, by="rebalancer", reason="stuck", also=(note,)
    )
    assert moved
    assert [e.kind for e in batches.calls[0]] == [
        "message_sent",
        "task_status_changed",
        "task_assigned",
        "negotiation_opened",
        "message_sent",
    ]


async def test_bootstrapping_a_session_is_one_batch(
    lk: Loomkin, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = Batches(lk, monkeypatch)
    session = await lk.open_session(
        project, model_factory=lambda _r, _n: ScriptedModel([Reply(text="hi")] * 3)
    )
    await session.send("hello")
    await lk.wait_idle()
    assert batches.with_("session_bootstrapped") == [
        "agent_spawned",
        "agent_spawned",
        "session_bootstrapped",
        "message_sent",
    ]

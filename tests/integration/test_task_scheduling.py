"""Task scheduling end to end (issue #6, epic 6.4): milestones, dynamic dependencies,
priority inheritance and the task board's transitions, through the real runtime.

Scripted workers (``_pipeline_models``) stand in for the LLM; the loop, the tools, the task
board and the scheduler are real, in virtual time. No session here has a lead: tasks are put
on the board and the scheduler hands them out, one after another, as agents free up.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import Playbook, Turn, answered, ids_in, steps

from loomkin.agents import SessionSettings
from loomkin.core.events import (
    DependencyAdded,
    Event,
    LoopFinished,
    MilestoneEmitted,
    TaskAssigned,
    TaskPriorityChanged,
    TaskStatusChanged,
    ToolCallCompleted,
)
from loomkin.ids import TaskId, TeamId
from loomkin.service import Loomkin
from loomkin.testing.models import Call, Reply

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.core.events import JSON, RecordedEvent
    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(bootstrap_orienter=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


async def _task(
    session: Session,
    title: str,
    *,
    team: TeamId | None = None,
    priority: int = 3,
    description: str = "",
    depends_on: tuple[TaskId, ...] = (),
    milestone: str | None = None,
) -> TaskId:
    task_id = await session.create_task(
        title,
        team=team,
        priority=priority,
        description=description,
        depends_on=depends_on,
        milestone=milestone,
    )
    return TaskId(task_id)


async def _recorded(lk: Loomkin, session: Session) -> list[RecordedEvent]:
    return await session.history()


def _one(recorded: list[RecordedEvent], where: Callable[[Event], bool]) -> RecordedEvent:
    matches = [r for r in recorded if where(r.event)]
    assert len(matches) == 1, f"expected exactly one match, got {len(matches)}"
    return matches[0]


def _status(task_id: TaskId, status: str) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, TaskStatusChanged) and e.task_id == task_id and e.status == status
    )


def _results(recorded: list[RecordedEvent], tool: str) -> list[ToolCallCompleted]:
    return [
        r.event for r in recorded if isinstance(r.event, ToolCallCompleted) and r.event.tool == tool
    ]


def _loops_ended_well(recorded: list[RecordedEvent]) -> bool:
    return {r.event.outcome for r in recorded if isinstance(r.event, LoopFinished)} == {"final"}


def _other_task(turn: Turn) -> str:
    (other,) = [t for t in ids_in(turn.brief) if t != turn.task_id]
    return other


# -- milestones ---------------------------------------------------------------------------------


async def _meddle(turn: Turn) -> Reply:
    if not turn.results("emit_milestone", ok=False):
        args: dict[str, JSON] = {"task_id": _other_task(turn), "name": "interface"}
        return Reply(tool_calls=[Call("emit_milestone", args)])
    if not turn.results("task_complete", ok=False):
        grab: dict[str, JSON] = {"result": "parser done", "task_id": _other_task(turn)}
        return Reply(tool_calls=[Call("task_complete", grab)])
    if not turn.results("task_complete"):
        return Reply(tool_calls=[Call("task_complete", {"result": "not mine to announce"})])
    return Reply(text="Left the milestone to its owner.")


async def test_milestone_starts_the_dependent_before_its_predecessor_completes(
    project: Path,
) -> None:
    interface: dict[str, JSON] = {"name": "interface", "note": "parse(text) -> Ast is in place"}
    book = Playbook(
        parts={
            "implement the parser": steps(
                (3.0, [Call("emit_milestone", interface)]),
                (4.0, [Call("task_complete", {"result": "parser done"})]),
            ),
            "write parser tests": steps((1.0, [Call("task_complete", {"result": "12 tests"})])),
            "announce the parser": _meddle,
        }
    )
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=book.factory, settings=SETTINGS)
        ops = TeamId(await session.create_team("ops"))
        t1 = await _task(session, "implement the parser")
        t2 = await _task(
            session,
            "write parser tests",
            depends_on=(t1,),
            milestone="interface",
        )
        await _task(
            session,
            "announce the parser",
            team=ops,
            description=f"Emit the interface milestone of task {t1}.",
        )
        ann = await session.spawn_agent("ann", "coder")
        await session.spawn_agent("bob", "coder")
        mallory = await session.spawn_agent("mallory", "coder", team="ops")
        await lk.wait_idle()
        recorded = await _recorded(lk, session)

        assert _loops_ended_well(recorded)
        assert session.task(t1).status == session.task(t2).status == "completed"
        assert session.task(t1).owner_id == ann.agent_id

        # Only the owner may emit: mallory is refused, readably (names, not ids).
        (refused,) = [e for e in _results(recorded, "emit_milestone") if e.is_error]
        assert refused.agent_id == mallory.agent_id
        assert refused.result == (
            f"Error: Only the owner of task 'implement the parser' (id {t1}) may emit its "
            "milestones, and that is ann, not you."
        )
        grabbed = [e for e in _results(recorded, "task_complete") if e.is_error]
        assert [e.result for e in grabbed] == [
            f"Error: Task 'implement the parser' (id {t1}) belongs to ann; only its owner may "
            "complete it. Send ann a message instead."
        ]
        emitted = _one(recorded, lambda e: isinstance(e, MilestoneEmitted))
        assert isinstance(emitted.event, MilestoneEmitted)
        assert emitted.event.by == ann.agent_id

        # T2 starts right at the milestone (same virtual instant), long before T1 completes.
        t2_starts = _one(recorded, _status(t2, "in_progress"))
        t1_done = _one(recorded, _status(t1, "completed"))
        refused_at = next(r for r in recorded if r.event is refused)
        assert refused_at.position < emitted.position < t2_starts.position < t1_done.position
        assert t2_starts.recorded_at == emitted.recorded_at
        assert t1_done.recorded_at - emitted.recorded_at == pytest.approx(4.0)
        assert session.task(t1).milestones == ("interface",)


# -- dynamic dependencies -----------------------------------------------------------------------


async def _plan_form(turn: Turn) -> Reply:
    form, schema = ids_in(turn.brief.split("Our form task ", 1)[1])[:2]
    if not turn.results("add_dependency"):
        args: dict[str, JSON] = {"task_id": form, "depends_on": schema}
        return Reply(tool_calls=[Call("add_dependency", args)])
    if not turn.results("add_dependency", ok=False):
        back: dict[str, JSON] = {"task_id": schema, "depends_on": form}
        return Reply(tool_calls=[Call("add_dependency", back)])
    if not turn.results("task_complete"):
        return Reply(tool_calls=[Call("task_complete", {"result": "form planned"})])
    return Reply(text="Planned; the form waits for the schema.")


async def test_dependency_added_while_work_runs_holds_the_dependent_back(project: Path) -> None:
    book = Playbook(
        parts={
            "publish the user schema": steps(
                (6.0, [Call("task_complete", {"result": "schema v1"})])
            ),
            "plan the signup form": _plan_form,
            "build the signup form": steps((1.0, [Call("task_complete", {"result": "built"})])),
        }
    )
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=book.factory, settings=SETTINGS)
        api = TeamId(await session.create_team("api"))
        web = TeamId(await session.create_team("web"))
        schema = await _task(session, "publish the user schema", team=api)
        form = await _task(session, "build the signup form", team=web)
        await _task(
            session,
            "plan the signup form",
            team=web,
            priority=1,  # planned first, while the form itself is already available
            description=f"Our form task {form} must wait for the api team's schema {schema}.",
        )
        await session.spawn_agent("alice", "coder", team="api")
        wes = await session.spawn_agent("wes", "coder", team="web")
        await lk.wait_idle()
        recorded = await _recorded(lk, session)

        assert _loops_ended_well(recorded)
        assert session.task(form).status == "completed"

        # The dependency was added by wes, across teams, while the form was still available.
        added = _one(recorded, lambda e: isinstance(e, DependencyAdded))
        assert added.event == DependencyAdded(
            session_id=added.event.session_id,
            task_id=form,
            depends_on=schema,
            added_by=wes.agent_id,
        )
        # The form was not started (nor even assigned) until the schema was done.
        schema_done = _one(recorded, _status(schema, "completed"))
        form_assigned = _one(recorded, lambda e: isinstance(e, TaskAssigned) and e.task_id == form)
        assert added.position < schema_done.position < form_assigned.position
        assert form_assigned.recorded_at - added.recorded_at == pytest.approx(6.0)

        # Closing the cycle back is refused through the tool, naming the cycle readably.
        (cycle,) = [e for e in _results(recorded, "add_dependency") if e.is_error]
        assert cycle.result.startswith(
            f"Error: Refused: task '{schema}' cannot wait for '{form}': that closes the cycle "
            f"{schema} → {form} → {schema} (each task waits for the next)"
        )
        assert f"{schema} is 'publish the user schema'" in cycle.result
        assert f"{form} is 'build the signup form'" in cycle.result
        assert [d for d in session.dependencies() if d.task_id == schema] == []


# -- priority inheritance and the scheduler -------------------------------------------------------


async def test_scheduler_runs_the_low_priority_blocker_of_an_urgent_task_first(
    project: Path,
) -> None:
    work = steps((1.0, [Call("task_complete", {"result": "done"})]))
    titles = ("tidy logs", "rename helpers", "update docs", "migrate the table", "hotfix login")
    book = Playbook(parts=dict.fromkeys(titles, work))
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=book.factory, settings=SETTINGS)
        medium = [await _task(session, t, priority=3) for t in titles[:3]]
        low = await _task(session, "migrate the table", priority=5)
        urgent = await _task(session, "hotfix login", priority=1, depends_on=(low,))
        # The urgent task lends its priority to its blocker at once, with the reason.
        assert session.task(low).effective_priority == 1
        solo = await session.spawn_agent("solo", "coder")
        await lk.wait_idle()
        recorded = await _recorded(lk, session)

        assert _loops_ended_well(recorded)
        assert all(v.status == "completed" for v in session.tasks())
        assert {a.role for a in session.agents()} == {"coder"}  # no lead

        # Priority changes are events with their reason: lent by the urgent task, then
        # returned once the blocker is done.
        changes = [r.event for r in recorded if isinstance(r.event, TaskPriorityChanged)]
        assert [(e.task_id, e.priority, e.effective_priority, e.reason) for e in changes] == [
            (low, 5, 1, f"inherited from {urgent} (p1)"),
            (low, 5, 5, "back to base priority p5"),
        ]

        # One agent, no lead: the scheduler hands out the blocker first, then the urgent
        # task, then the medium ones — each the moment the previous one completes.
        assigned = [r for r in recorded if isinstance(r.event, TaskAssigned)]
        order = [r.event.task_id for r in assigned if isinstance(r.event, TaskAssigned)]
        assert order == [low, urgent, *medium]
        for r in assigned:
            assert isinstance(r.event, TaskAssigned)
            assert r.event.owner == solo.agent_id
            assert r.event.assigned_by == "scheduler"
            assert "solo is idle" in r.event.reason
        first = assigned[0].event
        assert isinstance(first, TaskAssigned)
        assert first.reason.startswith(
            f"most urgent ready task: p1 inherited from {urgent} (own priority p5); "
        )
        done = [
            r
            for r in recorded
            if isinstance(r.event, TaskStatusChanged) and r.event.status == "completed"
        ]
        for finished, nxt in zip(done, assigned[1:], strict=False):
            assert finished.position < nxt.position
            assert nxt.recorded_at == finished.recorded_at  # no lead's turn in between
        fallback = _one(
            recorded,
            lambda e: isinstance(e, TaskPriorityChanged) and e.effective_priority == 5,
        )
        assert _one(recorded, _status(low, "completed")).position < fallback.position
        assert all(v.effective_priority == v.priority for v in session.tasks())


# -- the task board through the tools -----------------------------------------------------------


HANDOFF: dict[str, JSON] = {
    "result": "documented the public API",
    "actions_taken": ["read the routes", "wrote the reference"],
    "files_changed": ["docs/api.md"],
    "decisions": ["one page per resource"],
    "open_questions": ["document the admin routes?"],
}


_PENDING = re.compile(r"^- \[pending\] (\S+) 'publish the docs'", re.MULTILINE)


async def _document(turn: Turn) -> Reply:
    listed = turn.results("task_list")
    if not listed:
        return Reply(tool_calls=[Call("task_list")])
    found = _PENDING.search(listed[0])
    assert found is not None, listed[0]
    plan: list[Call] = [
        Call("task_update", {"status": "ready_for_review", "task_id": found[1]}),
        Call("task_update", {"status": "finished"}),
        Call("task_update", {"status": "ready_for_review", "note": "docs written"}),
        Call("task_complete", HANDOFF),
        Call("task_complete", {"result": "again", "task_id": turn.task_id}),
    ]
    k = answered(turn) - 1
    return Reply(tool_calls=[plan[k]]) if k < len(plan) else Reply(text="Docs done.")


async def _publish(turn: Turn) -> Reply:
    if not turn.results("task_read"):
        return Reply(tool_calls=[Call("task_read", {"task_id": _other_task(turn)})])
    if not turn.results("task_complete"):
        return Reply(tool_calls=[Call("task_complete", {"result": "published"})])
    return Reply(text="Published.")


async def test_task_board_transitions_and_handoff_through_the_tools(project: Path) -> None:
    book = Playbook(parts={"document the API": _document, "publish the docs": _publish})
    async with await Loomkin.open("memory:") as lk:
        session = await lk.open_session(project, model_factory=book.factory, settings=SETTINGS)
        docs = await _task(session, "document the API")
        publish = await _task(
            session,
            "publish the docs",
            description=f"Publish what task {docs} wrote.",
            depends_on=(docs,),
        )
        ann = await session.spawn_agent("ann", "coder")
        await lk.wait_idle()
        recorded = await _recorded(lk, session)

        assert _loops_ended_well(recorded)
        assert session.task(docs).status == session.task(publish).status == "completed"
        updates = [(e.is_error, e.result) for e in _results(recorded, "task_update")]
        assert updates[0] == (
            True,
            f"Error: task {publish!r} cannot go from 'pending' to 'ready_for_review'; allowed "
            "from 'pending': 'assigned', 'cancelled', 'pending_speculative'",
        )
        assert updates[1][0]
        assert "status" in updates[1][1]
        assert "'in_progress', 'blocked', 'ready_for_review'" in updates[1][1]
        assert updates[2] == (False, f"Task {docs} is now ready_for_review.")
        assert session.task(publish).status == "completed"  # the refusal changed nothing

        completes = [(e.is_error, e.result) for e in _results(recorded, "task_complete")]
        assert completes[:2] == [
            (False, f"Task {docs} completed."),
            (
                True,
                f"Error: task {docs!r} cannot go from 'completed' to 'completed'; 'completed' "
                "is final",
            ),
        ]
        statuses = [
            (e.previous, e.status)
            for r in recorded
            if isinstance(e := r.event, TaskStatusChanged) and e.task_id == docs
        ]
        assert statuses == [
            ("assigned", "in_progress"),
            ("in_progress", "ready_for_review"),
            ("ready_for_review", "completed"),
        ]

        # The structured hand-off lands on the task, and task_read shows it to the next agent.
        handoff = session.task(docs).handoff
        assert handoff is not None
        assert handoff.files_changed == ("docs/api.md",)
        assert handoff.open_questions == ("document the admin routes?",)
        (read,) = _results(recorded, "task_read")
        assert read.agent_id == ann.agent_id
        assert read.result == "\n".join(
            [
                f"- [completed] {docs} 'document the API' (ann, p3)",
                "Result:",
                "documented the public API",
                "Actions taken: read the routes; wrote the reference",
                "Files changed: docs/api.md",
                "Decisions: one page per resource",
                "Open questions: document the admin routes?",
            ]
        )

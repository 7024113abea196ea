"""Pipelines end to end (issue #6, epic 6.9): A produces → B consumes incrementally → C integrates.

Scripted workers (``_pipeline_models``) stand in for the LLM; the loop, the tools, the task
board, the scheduler and the messages are the real runtime, in virtual time. Nobody assigns
anything by hand: the tasks are put on the board, three coders are spawned, and the
scheduler hands out whatever becomes ready.

* B depends on A with ``requires_output``: it starts on A's first chunk (its brief carries
  that chunk, capped with a pointer to the full output), receives A's later chunks as
  ``partial_output`` messages between loop steps or while it waits (blocked), and publishes
  a chunk of its own per chunk of A. C depends on B (``blocks``) and starts when B is done.
* The same pipeline survives a restart in the middle (SQLite store): no chunk is lost or
  duplicated, every task completes once, no completed tool call runs again.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest
from _pipeline_models import (
    NUDGE,
    Playbook,
    batch,
    consumer,
    current_turn,
    integrator,
    producer,
)

from loomkin.agents import SessionSettings
from loomkin.core.events import (
    Event,
    LoopFinished,
    MessageSent,
    PartialResultPublished,
    TaskStatusChanged,
    ToolCallCompleted,
    ToolCallStarted,
)
from loomkin.core.taskoutput import truncation_marker
from loomkin.ids import TaskId
from loomkin.service import Loomkin

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from loomkin.service import Session

pytestmark = [pytest.mark.looptime, pytest.mark.timeout(60)]

SETTINGS = SessionSettings(bootstrap_orienter=False)
BATCHES = (600, 5, 5)
"""Records per chunk of A: the first is far larger than the brief's cap (4000 characters)."""


def playbook() -> Playbook:
    return Playbook(
        parts={
            "produce records": producer(BATCHES, work_s=2.0),
            "transform records": consumer(work_s=0.5),
            "integrate records": integrator(work_s=1.0),
        }
    )


async def _start(lk: Loomkin, project: Path, book: Playbook) -> tuple[Session, list[TaskId]]:
    session = await lk.open_session(project, model_factory=book.factory, settings=SETTINGS)
    a = await session.create_task("produce records")
    b = await session.create_task("transform records", depends_on=(a,), dep_kind="requires_output")
    c = await session.create_task("integrate records", depends_on=(b,))
    for name in ("ann", "bob", "cat"):
        await session.spawn_agent(name, "coder")
    return session, [TaskId(a), TaskId(b), TaskId(c)]


async def _events(lk: Loomkin, session_id: str) -> list[Event]:
    return [r.event for r in await lk.history(session_id)]


def _index(events: list[Event], where: Callable[[Event], bool]) -> int:
    matches = [i for i, e in enumerate(events) if where(e)]
    assert len(matches) == 1, f"expected exactly one match, got {len(matches)}"
    return matches[0]


def _status(task_id: TaskId, status: str, previous: str | None = None) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, TaskStatusChanged)
        and e.task_id == task_id
        and e.status == status
        and previous in (None, e.previous)
    )


def _chunks(events: list[Event], task_id: TaskId) -> list[tuple[int, str]]:
    return [
        (e.seq, e.content)
        for e in events
        if isinstance(e, PartialResultPublished) and e.task_id == task_id
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


async def test_three_stage_pipeline_streams_through_the_real_runtime(project: Path) -> None:
    book = playbook()
    async with await Loomkin.open("memory:") as lk:
        session, (a, b, c) = await _start(lk, project, book)
        await lk.wait_idle()
        events = await _events(lk, session.session_id)
        board = {t.task_id: t for t in session.tasks()}

        assert [board[t].status for t in (a, b, c)] == ["completed"] * 3
        assert {e.outcome for e in events if isinstance(e, LoopFinished)} == {"final"}

        # B starts on A's first chunk, long before A completes.
        a_first_chunk = _index(
            events,
            lambda e: isinstance(e, PartialResultPublished) and e.task_id == a and e.seq == 1,
        )
        b_starts = _index(events, _status(b, "in_progress", "assigned"))
        a_done = _index(events, _status(a, "completed"))
        assert a_first_chunk < b_starts < a_done

        # A's first chunk marks it partially complete in the chunk's own batch; its later
        # chunks keep that status, and it completes from there as any task in progress would.
        a_partial = _index(events, _status(a, "partially_complete", "in_progress"))
        assert a_partial == a_first_chunk + 1
        a_moves = [e.status for e in events if isinstance(e, TaskStatusChanged) and e.task_id == a]
        assert a_moves[-2:] == ["partially_complete", "completed"]
        assert _index(events, _status(a, "completed", "partially_complete")) == a_done

        # B turned each of A's chunks into one of its own, in order, while A was still working.
        assert _chunks(events, a) == [(k, batch(k, n)) for k, n in enumerate(BATCHES, start=1)]
        assert _chunks(events, b) == [(k, f"transformed batch {k}") for k in (1, 2, 3)]
        b_first_chunk = _index(
            events,
            lambda e: isinstance(e, PartialResultPublished) and e.task_id == b and e.seq == 1,
        )
        assert b_first_chunk < a_done

        # A's later chunks reached B's model as readable notices, not as object dumps.
        b_owner = session.agent(board[b].owner or "")
        seen = book.seen(b_owner.name)
        for k in (2, 3):
            assert (
                f"[New output from a task you depend on]\nTask 'produce records' (id {a}) "
                f"published chunk {k} ({k}/3 items):\n{batch(k, 5)}"
            ) in seen
        assert (
            f"[Task finished]\nTask 'produce records' (id {a}), whose output your task uses, "
            "was completed by"
        ) in seen
        assert "no more chunks will come. Its final output:\n3 record batches produced" in seen
        # Waiting (blocked) for the next chunk is not nagged with the "task still open" nudge.
        assert NUDGE not in seen
        for dump in ("PartialChunk(", "BusMessage(", "TaskView(", "{'"):
            assert dump not in seen
        notices = [
            e for e in events if isinstance(e, MessageSent) and e.msg_type == "partial_output"
        ]
        assert [e.data for e in notices] == [{"task_id": a, "seq": k} for k in (2, 3)]
        assert {e.to_agent for e in notices} == {b_owner.agent_id}

        # B's brief carries A's first chunk, capped, with a pointer to the full output.
        briefs = [
            turn.brief
            for request in book.models[b_owner.name].requests
            if (turn := current_turn(request.messages)) is not None and turn.task_id == b
        ]
        brief = briefs[0]
        assert "Output of the tasks this one depends on:" in brief
        assert f'Task {a} "produce records" (partially_complete; PARTIAL output so far' in brief
        assert "[chunk 1] records batch 1: rec-1-0000" in brief
        assert brief.rstrip().count(truncation_marker(a).strip()) == 1
        assert len(batch(1, BATCHES[0])) > 4000 > len(brief) - 400

        # C waits for all of B.
        assert _index(events, _status(b, "completed")) < _index(events, _status(c, "in_progress"))
        handoff = board[c].handoff
        assert handoff is not None
        assert handoff.files_changed == ("records.json",)


async def test_pipeline_survives_a_restart_in_the_middle(project: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    async with await Loomkin.open(url) as lk:
        session, (a, b, c) = await _start(lk, project, playbook())
        session_id = session.session_id
        async with session.events(after=0) as sub:
            async for recorded in sub:
                e = recorded.event
                if isinstance(e, PartialResultPublished) and e.task_id == b:
                    break
        # Closing stops every agent where it is: A in the middle of its work on chunk 2,
        # B right after publishing its first chunk.
    async with await Loomkin.open(url) as lk:
        before = await _events(lk, session_id)
        assert [s for s, _ in _chunks(before, a)] == [1]
        assert [s for s, _ in _chunks(before, b)] == [1]
        assert {t.task_id: t.status for t in lk.tasks(session_id)}[b] == "partially_complete"

        await lk.resume_session(session_id, model_factory=playbook().factory, settings=SETTINGS)
        await lk.wait_idle()
        events = await _events(lk, session_id)

        statuses = {t.task_id: t.status for t in lk.tasks(session_id)}
        assert [statuses[t] for t in (a, b, c)] == ["completed"] * 3
        assert {e.outcome for e in events if isinstance(e, LoopFinished)} == {"final"}
        # B's publish was cut off mid-call: reported as interrupted (never re-run), and B
        # looked at its task (task_read) before publishing again.
        interrupted = [
            e for e in events if isinstance(e, ToolCallCompleted) and e.outcome == "interrupted"
        ]
        assert [e.tool for e in interrupted] == ["publish_partial"]
        assert _chunks(events, a) == [(k, batch(k, n)) for k, n in enumerate(BATCHES, start=1)]
        assert _chunks(events, b) == [(k, f"transformed batch {k}") for k in (1, 2, 3)]
        completions = Counter(
            e.task_id
            for e in events
            if isinstance(e, TaskStatusChanged) and e.status == "completed"
        )
        assert completions == {a: 1, b: 1, c: 1}
        started = Counter(e.call_id for e in events if isinstance(e, ToolCallStarted))
        finished = Counter(e.call_id for e in events if isinstance(e, ToolCallCompleted))
        assert set(started.values()) == {1}, "a tool call ran twice"
        assert set(finished.values()) == {1}
        assert _index(events, _status(b, "completed")) < _index(events, _status(c, "in_progress"))

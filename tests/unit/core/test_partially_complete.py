"""``partially_complete`` is ``in_progress`` with published partial output (issue #17).

Every move out of ``in_progress`` must be allowed out of ``partially_complete`` too (the task
is still being worked on: it may block, pause, complete, fail, be released, be reviewed or
reassigned, be cancelled), and every set that counts started or active work must count both.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_tasks_driver import SESSION, TEAM, aid, tid

from loomkin.core.records import TASK_STATUSES, TaskStatus
from loomkin.core.tasks import TaskOwner, TaskView, check_transition
from loomkin.core.taskstates import (
    ACTIVE_STATUSES,
    CHUNK_STATUSES,
    TRANSITIONS,
    WORKING_STATUSES,
    allowed_targets,
)
from loomkin.errors import InvalidTransition
from loomkin.tasks.stealing import STARTED

OWNER = TaskOwner(agent_id=aid("ann"), name="Ann")
WORKING: tuple[TaskStatus, TaskStatus] = ("in_progress", "partially_complete")


def view(status: TaskStatus, owner: TaskOwner | None) -> TaskView:
    return TaskView(
        task_id=tid("t-1"), session_id=SESSION, team_id=TEAM, title="x", status=status, owner=owner
    )


def _allowed(status: TaskStatus, target: TaskStatus, owner: TaskOwner | None) -> bool:
    try:
        check_transition(view(status, owner), target)
    except InvalidTransition:
        return False
    return True


@given(
    target=st.sampled_from(TASK_STATUSES),
    owned=st.booleans(),
)
def test_partially_complete_may_go_wherever_in_progress_may(
    target: TaskStatus, owned: bool
) -> None:
    owner = OWNER if owned else None
    if target in WORKING:
        # Between the two working statuses: in progress publishes its first chunk, and a
        # partially complete task may go back in progress; neither moves to itself.
        assert _allowed("in_progress", "partially_complete", owner)
        assert "in_progress" in allowed_targets("partially_complete")
        return
    assert _allowed("in_progress", target, owner) == _allowed("partially_complete", target, owner)


def test_the_table_lists_every_move_out_of_in_progress_for_partially_complete() -> None:
    leaving = TRANSITIONS["in_progress"] - {"partially_complete"}
    assert leaving <= TRANSITIONS["partially_complete"]
    assert {"blocked", "paused", "completed", "failed", "pending", "ready_for_review"} <= leaving
    assert {"assigned", "cancelled"} <= leaving
    # Whatever leads into in_progress from a waiting status also leads back from it.
    for source in ("paused", "blocked", "ready_for_review"):
        assert "in_progress" in TRANSITIONS[source]


@pytest.mark.parametrize(
    ("name", "statuses"),
    [
        ("load", ACTIVE_STATUSES),
        ("started (never stolen)", STARTED),
        ("may publish chunks", CHUNK_STATUSES),
        ("working", WORKING_STATUSES),
    ],
)
def test_every_set_counting_in_progress_counts_partially_complete(
    name: str, statuses: frozenset[str]
) -> None:
    assert "in_progress" in statuses, name
    assert "partially_complete" in statuses, name

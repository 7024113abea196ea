"""Rule-by-rule tests of the task board (transitions, dependencies, readiness, priorities)."""

from __future__ import annotations

import itertools

import pytest
from test_tasks_driver import SESSION, TEAM, Driver, aid, tid

from loomkin.core.events.base import decode_event, encode_event
from loomkin.core.events.session import UserMessagePosted
from loomkin.core.events.tasks import (
    DependencyAdded,
    MilestoneEmitted,
    TaskClaimed,
    TaskStatusChanged,
)
from loomkin.core.records import TASK_STATUSES, TaskStatus
from loomkin.core.tasks import TRANSITIONS, TaskBoard, TaskOwner, TaskView, check_transition
from loomkin.errors import InvalidTransition, NotFound, PolicyRefused, TaskCycleError, UserError
from loomkin.ids import MessageId, TeamId

OWNER = TaskOwner(agent_id=aid("ann"), name="Ann")


def view(status: TaskStatus, owner: TaskOwner | None = OWNER) -> TaskView:
    return TaskView(
        task_id=tid("t-1"), session_id=SESSION, team_id=TEAM, title="x", status=status, owner=owner
    )


# ---- transitions

REFUSED = [(a, b) for a, b in itertools.product(TASK_STATUSES, repeat=2) if b not in TRANSITIONS[a]]
ALLOWED = [(a, b) for a in TASK_STATUSES for b in sorted(TRANSITIONS[a])]


def test_transition_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(TASK_STATUSES)
    for targets in TRANSITIONS.values():
        assert targets <= set(TASK_STATUSES)


def test_transition_table_has_the_documented_paths() -> None:
    paths = [
        ("pending", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "partially_complete"),
        ("partially_complete", "in_progress"),
        ("partially_complete", "completed"),
        ("ready_for_review", "completed"),
        ("ready_for_review", "in_progress"),
        ("paused", "in_progress"),
        ("blocked", "in_progress"),
        ("blocked", "assigned"),
        ("blocked", "pending"),
        ("assigned", "pending"),
        ("pending", "pending_speculative"),
        ("pending_speculative", "completed_tentative"),
        ("completed_tentative", "completed"),
        ("completed_tentative", "discarded_tentative"),
        ("discarded_tentative", "pending"),
    ]
    for source, target in paths:
        assert target in TRANSITIONS[source], (source, target)
    for target in ("completed", "failed", "cancelled", "paused", "blocked", "ready_for_review"):
        assert target in TRANSITIONS["in_progress"]
    assert not TRANSITIONS["completed"]
    assert not TRANSITIONS["cancelled"]


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_every_refused_transition_names_task_statuses_and_targets(
    source: TaskStatus, target: TaskStatus
) -> None:
    with pytest.raises(InvalidTransition) as err:
        check_transition(view(source), target)
    message = str(err.value)
    assert "'t-1'" in message
    assert f"from {source!r} to {target!r}" in message
    if TRANSITIONS[source]:
        for allowed in TRANSITIONS[source]:
            assert repr(allowed) in message
    else:
        assert f"{source!r} is final" in message


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_every_allowed_transition_passes_with_an_owner(
    source: TaskStatus, target: TaskStatus
) -> None:
    check_transition(view(source), target)


def test_moving_to_in_progress_or_assigned_needs_an_owner() -> None:
    with pytest.raises(InvalidTransition, match="has no owner"):
        check_transition(view("blocked", owner=None), "in_progress")
    with pytest.raises(InvalidTransition, match=r"assign it \(TaskAssigned\)"):
        check_transition(view("blocked", owner=None), "assigned")


def test_start_is_refused_while_a_blocking_dependency_is_unmet() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a")
    d.assign("b", "bob")
    with pytest.raises(InvalidTransition, match="cannot start: it still waits for b waits for a"):
        d.board.check_status(tid("b"), "in_progress")
    d.finish("a")
    d.status("b", "in_progress")
    assert d.board.task(tid("b")).status == "in_progress"


def test_release_clears_the_owner_and_makes_the_task_available_again() -> None:
    d = Driver()
    d.create("a")
    d.start("a", "ann")
    changes = d.status("a", "pending")
    task = d.board.task(tid("a"))
    assert task.owner is None
    assert changes.newly_ready == ("a",)
    assert d.ready_ids() == ["a"]


def test_failed_task_can_be_retried_but_completed_is_final() -> None:
    d = Driver()
    d.create("a")
    d.start("a")
    d.status("a", "failed", result="boom")
    assert d.board.task(tid("a")).result == "boom"
    assert d.status("a", "pending").newly_ready == ("a",)
    assert d.board.task(tid("a")).result is None
    d.finish("a")
    with pytest.raises(InvalidTransition, match="'completed' is final"):
        d.board.check_status(tid("a"), "pending")


def test_completion_records_result_and_handoff() -> None:
    d = Driver()
    d.create("a")
    d.start("a")
    d.status(
        "a",
        "completed",
        result="all good",
        files_changed=("a.py",),
        decisions=("use sqlite",),
        open_questions=("why?",),
    )
    task = d.board.task(tid("a"))
    assert task.result == "all good"
    assert task.handoff is not None
    assert task.handoff.files_changed == ("a.py",)
    assert task.handoff.decisions == ("use sqlite",)
    assert task.finished


def test_check_status_on_unknown_task_is_not_found() -> None:
    with pytest.raises(NotFound, match="no task 'nope'"):
        TaskBoard().check_status(tid("nope"), "assigned")


# ---- assignment and claims


def test_assign_is_idempotent_for_the_same_owner_and_refused_for_finished_tasks() -> None:
    d = Driver()
    d.create("a")
    assert d.board.check_assign(tid("a"), aid("ann"))
    d.assign("a", "ann")
    assert d.board.task(tid("a")).owner == TaskOwner(agent_id=aid("ann"), name="Ann")
    assert not d.board.check_assign(tid("a"), aid("ann"))
    assert d.board.check_assign(tid("a"), aid("bob"))  # reassignment
    d.finish("a")
    with pytest.raises(InvalidTransition, match="cannot go from 'completed' to 'assigned'"):
        d.board.check_assign(tid("a"), aid("bob"))


def test_claim_takes_a_queued_task_from_its_owner() -> None:
    d = Driver()
    d.create("a")
    d.assign("a", "ann")
    d.claim("a", "bob", expected="ann")
    assert d.board.task(tid("a")).owner_id == "bob"
    assert d.board.task(tid("a")).status == "assigned"


def test_claim_refusals_name_the_reason() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a")
    d.assign("a", "ann")
    with pytest.raises(InvalidTransition, match="now owned by 'ann', not 'carl': the claim lost"):
        d.board.check_claim(tid("a"), aid("bob"), aid("carl"))
    with pytest.raises(InvalidTransition, match="already owned by 'ann'"):
        d.board.check_claim(tid("a"), aid("ann"), aid("ann"))
    with pytest.raises(InvalidTransition, match="not ready"):
        d.board.check_claim(tid("b"), aid("bob"), None)
    d.status("a", "in_progress")
    with pytest.raises(InvalidTransition, match="is 'in_progress': only a pending or assigned"):
        d.board.check_claim(tid("a"), aid("bob"), aid("ann"))


def test_load_counts_active_tasks_per_owner() -> None:
    d = Driver()
    for name in "abcd":
        d.create(name)
    d.start("a", "ann")
    d.assign("b", "ann")
    d.finish("c", "bob")
    d.start("d", "bob")
    d.status("d", "paused")
    assert d.board.load() == {"ann": 2, "bob": 1}


# ---- dependencies


def test_dependency_on_unknown_task_is_not_found() -> None:
    d = Driver()
    d.create("a")
    with pytest.raises(NotFound, match="'ghost'"):
        d.board.check_dependency(tid("a"), tid("ghost"))
    with pytest.raises(NotFound, match="'ghost'"):
        d.board.check_dependency(tid("ghost"), tid("a"))


@pytest.mark.parametrize("kind", ["blocks", "informs", "requires_output"])
def test_self_dependency_is_refused_for_every_kind(kind: str) -> None:
    d = Driver()
    d.create("a")
    with pytest.raises(TaskCycleError, match="'a' cannot depend on itself"):
        d.board.check_dependency(tid("a"), tid("a"), kind)  # type: ignore[arg-type]


def test_cycle_is_refused_with_its_path() -> None:
    d = Driver()
    for name in "abc":
        d.create(name)
    d.dep("a", "b")
    d.dep("b", "c", "requires_output")
    with pytest.raises(TaskCycleError, match="closes the cycle c → a → b → c"):
        d.board.check_dependency(tid("c"), tid("a"))


def test_milestone_edges_count_for_cycles_but_informs_edges_do_not() -> None:
    d = Driver()
    for name in "abc":
        d.create(name)
    d.dep("a", "b", milestone="schema_ready")
    with pytest.raises(TaskCycleError, match="b → a → b"):
        d.board.check_dependency(tid("b"), tid("a"), "requires_output", "x")
    d.dep("b", "a", "informs")  # shares output only: no deadlock possible
    d.dep("c", "a", "informs")
    d.dep("a", "c")
    assert [dep.kind for dep in d.board.dependencies(tid("b"))] == ["informs"]


def test_duplicate_dependency_is_idempotent() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    assert d.board.check_dependency(tid("b"), tid("a"))
    d.dep("b", "a")
    assert not d.board.check_dependency(tid("b"), tid("a"))
    d.board.apply(
        DependencyAdded(session_id=SESSION, task_id=tid("b"), depends_on=tid("a"))
    )  # re-delivered
    assert len(d.board.dependencies(tid("b"))) == 1
    assert d.board.ignored == 1
    # A different kind or milestone is a different edge.
    assert d.board.check_dependency(tid("b"), tid("a"), "requires_output")


def test_bad_dependency_input_is_a_user_error() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    with pytest.raises(UserError, match="unknown dependency kind 'waits'"):
        d.board.check_dependency(tid("b"), tid("a"), "waits")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="milestone name must not be empty"):
        d.board.check_dependency(tid("b"), tid("a"), "blocks", " ")


def test_apply_skips_a_cycle_closing_event_from_a_bad_log() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a")
    d.board.apply(DependencyAdded(session_id=SESSION, task_id=tid("a"), depends_on=tid("b")))
    assert d.board.dependencies(tid("a")) == ()
    assert d.board.ignored == 1


# ---- readiness


def test_blocks_waits_for_completion_not_for_partial_output() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a")
    d.start("a")
    assert not d.chunk("a", 1, "half").newly_ready
    assert not d.status("a", "partially_complete").newly_ready
    assert not d.board.is_ready(tid("b"))
    d.status("a", "completed")
    assert d.board.is_ready(tid("b"))


def test_requires_output_starts_on_the_first_chunk() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a", "requires_output")
    d.start("a")
    assert d.ready_ids() == []
    assert d.chunk("a", 1, "rows 1-10", 10, 100).newly_ready == ("b",)
    assert d.chunk("a", 2, "rows 11-20", 20, 100).newly_ready == ()


def test_requires_output_starts_on_partially_complete() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a", "requires_output")
    d.start("a")
    assert d.status("a", "partially_complete", result="3/10 done").newly_ready == ("b",)


def test_milestone_dependency_waits_for_the_milestone_whatever_the_status() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.create("c")
    d.dep("b", "a", "blocks", "schema_ready")
    d.dep("c", "a", "requires_output", "schema_ready")
    d.start("a", "ann")
    d.chunk("a", 1, "partial")
    assert d.ready_ids() == []
    assert d.milestone("a", "schema_ready", "ann").newly_ready == ("b", "c")
    assert d.board.task(tid("a")).status == "in_progress"


def test_milestone_dependency_is_met_by_completion_even_without_the_milestone() -> None:
    # A completed task can emit nothing more: waiting on for its milestone would deadlock.
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a", "blocks", "schema_ready")
    assert d.board.waiting_on(tid("b"))[0].milestone == "schema_ready"
    d.finish("a")
    assert d.board.waiting_on(tid("b")) == ()
    assert d.ready_ids() == ["b"]


def test_informs_never_blocks() -> None:
    d = Driver()
    d.create("a")
    d.create("b")
    d.dep("b", "a", "informs")
    assert d.ready_ids() == ["a", "b"]
    assert d.board.is_ready(tid("b"))


def test_newly_ready_lists_exactly_the_tasks_the_event_unblocked() -> None:
    d = Driver()
    assert d.create("lead").newly_ready == ("lead",)
    d.create("d1", 4)
    d.create("d2", 2)
    d.create("other")
    d.create("d3")
    d.dep("d1", "lead")
    d.dep("d2", "lead")
    d.dep("d3", "lead")
    d.dep("d3", "other")
    d.start("lead")
    changes = d.finish("lead")
    assert changes.newly_ready == ("d2", "d1")  # by effective priority, not all available
    assert "other" in d.ready_ids()


def test_ready_tasks_order_by_effective_priority_then_creation() -> None:
    d = Driver()
    d.create("a", 3)
    d.create("b", 2)
    d.create("c", 3)
    d.create("d", 1)
    d.create("e", 5)
    d.create("u", 1)
    d.dep("u", "e")
    assert d.ready_ids() == ["d", "e", "b", "a", "c"]


def test_adding_a_dependency_hides_a_ready_task_but_does_not_stop_a_running_one() -> None:
    d = Driver()
    for name in "abc":
        d.create(name)
    d.start("c")
    d.dep("b", "a")
    d.dep("c", "a")
    assert d.ready_ids() == ["a"]
    assert d.board.task(tid("c")).status == "in_progress"
    assert [dep.depends_on for dep in d.board.waiting_on(tid("c"))] == ["a"]


def test_ready_tasks_filter_by_team_and_dependencies_may_cross_teams() -> None:
    d = Driver()
    d.create("a", team=TeamId("x"))
    d.create("b", team=TeamId("y"))
    d.dep("b", "a")
    assert [v.task_id for v in d.board.ready_tasks(TeamId("y"))] == []
    d.finish("a")
    assert [v.task_id for v in d.board.ready_tasks(TeamId("y"))] == ["b"]
    assert [v.task_id for v in d.board.tasks(TeamId("x"))] == ["a"]


# ---- milestones and partial results


def test_only_the_owner_may_emit_a_milestone_and_it_is_idempotent() -> None:
    d = Driver()
    d.create("a")
    with pytest.raises(PolicyRefused, match="owned by nobody, not 'ann'"):
        d.board.check_milestone(tid("a"), "m", aid("ann"))
    d.start("a", "ann")
    with pytest.raises(PolicyRefused, match="owned by 'ann', not 'bob'"):
        d.board.check_milestone(tid("a"), "m", aid("bob"))
    with pytest.raises(UserError, match="must not be empty"):
        d.board.check_milestone(tid("a"), "", aid("ann"))
    assert d.board.check_milestone(tid("a"), "m", aid("ann"))
    d.milestone("a", "m", "ann")
    assert not d.board.check_milestone(tid("a"), "m", aid("ann"))
    d.board.apply(MilestoneEmitted(session_id=SESSION, task_id=tid("a"), name="m"))
    assert d.board.task(tid("a")).milestones == ("m",)


def test_partial_result_checks() -> None:
    d = Driver()
    d.create("a")
    with pytest.raises(InvalidTransition, match="is 'pending'; partial results are published"):
        d.board.check_partial(tid("a"), 1)
    d.start("a", "ann")
    with pytest.raises(PolicyRefused, match="only the owner"):
        d.board.check_partial(tid("a"), 1, by=aid("bob"))
    with pytest.raises(UserError, match="11 items done out of 10"):
        d.board.check_partial(tid("a"), 1, completed_items=11, total_items=10)
    with pytest.raises(UserError, match="cannot be negative"):
        d.board.check_partial(tid("a"), 1, completed_items=-1)
    d.chunk("a", 1, "one")
    with pytest.raises(InvalidTransition, match="seq 1 must be greater than the last one \\(1\\)"):
        d.board.check_partial(tid("a"), 1)


def test_new_partial_chunks_returns_chunks_after_a_sequence_number() -> None:
    d = Driver()
    d.create("a")
    d.start("a")
    for seq in (1, 2, 4):
        d.chunk("a", seq, f"c{seq}", seq, 4)
    chunks = d.board.new_partial_chunks(tid("a"), after_seq=1)
    assert [c.seq for c in chunks] == [2, 4]
    assert d.board.new_partial_chunks(tid("a"), after_seq=4) == ()
    assert len(d.board.new_partial_chunks(tid("a"))) == 3
    task = d.board.task(tid("a"))
    assert (task.completed_items, task.total_items) == (4, 4)


def test_predecessor_outputs_is_readable_text_with_partial_marking() -> None:
    d = Driver()
    d.create("a", title="Extract rows")
    d.create("b", title="Load rows")
    d.create("c", title="Style guide")
    d.create("z", title="Integrate")
    d.dep("z", "a", "requires_output")
    d.dep("z", "b", "requires_output")
    d.dep("z", "c", "informs")
    d.start("a")
    d.chunk("a", 1, "rows 1-10", 10, 30)
    d.chunk("a", 2, "rows 11-20", 20, 30)
    d.start("b")
    d.status("b", "completed", result="loaded", files_changed=("db.sql",))
    text = d.board.predecessor_outputs(tid("z"))
    assert (
        'Task a "Extract rows" (in_progress; PARTIAL output so far, 20/30 items done, 2 chunks)'
        in text
    )
    assert "[chunk 1] rows 1-10\n[chunk 2] rows 11-20" in text
    assert 'Task b "Load rows" (completed):\nloaded\nFiles changed: db.sql' in text
    assert "Style guide" not in text
    assert "TaskView(" not in text
    assert "PartialChunk(" not in text
    with_informs = d.board.predecessor_outputs(tid("z"), kinds=("requires_output", "informs"))
    assert 'Task c "Style guide" (pending): no output yet.' in with_informs
    assert d.board.predecessor_outputs(tid("a")) == ""


def test_predecessor_outputs_is_truncated_to_the_cap_with_a_pointer() -> None:
    d = Driver()
    d.create("big")
    d.create("small")
    d.create("z")
    d.dep("z", "big", "requires_output")
    d.dep("z", "small", "requires_output")
    d.finish("big", result="x" * 10_000)
    d.finish("small", result="short answer")
    text = d.board.predecessor_outputs(tid("z"), cap_chars=1000)
    assert len(text) <= 1000
    assert "… [truncated; full output: task big, use task_read]" in text
    assert "short answer" in text  # the short output stays whole
    assert "truncated; full output: task small" not in text


# ---- priority inheritance


def test_priority_is_inherited_transitively_with_a_reason() -> None:
    d = Driver()
    d.create("a", 5)
    d.create("b", 4)
    d.create("c", 1)
    d.dep("b", "a")
    changes = d.dep("c", "b", "requires_output")
    moved = {ch.task_id: (ch.old, ch.new, ch.reason) for ch in changes.priority_changes}
    assert moved == {
        "a": (4, 1, "inherited from c (p1) via b"),
        "b": (4, 1, "inherited from c (p1)"),
    }
    assert d.board.effective_priority(tid("a")) == 1
    assert d.board.task(tid("a")).inherited_from == "c"
    assert d.board.task(tid("a")).priority == 5


def test_inherited_priority_falls_back_when_the_dependent_finishes() -> None:
    d = Driver()
    d.create("low", 5)
    d.create("mid", 3)
    d.create("urgent", 1)
    d.dep("urgent", "low")
    d.dep("mid", "low")
    assert d.board.effective_priority(tid("low")) == 1
    changes = d.status("urgent", "cancelled")
    assert [(c.task_id, c.old, c.new) for c in changes.priority_changes] == [("low", 1, 3)]
    assert "inherited from mid (p3)" in changes.priority_changes[0].reason
    changes = d.status("mid", "cancelled")
    assert changes.priority_changes[0].reason == "back to base priority p5"


def test_a_completed_blocker_and_an_emitted_milestone_stop_lending() -> None:
    d = Driver()
    d.create("a", 5)
    d.create("b", 5)
    d.create("u", 1)
    d.dep("u", "a", "blocks", "api_ready")
    d.dep("u", "b")
    assert d.board.effective_priority(tid("a")) == 1
    d.start("a", "ann")
    changes = d.milestone("a", "api_ready", "ann")
    assert [(c.task_id, c.new) for c in changes.priority_changes] == [("a", 5)]
    changes = d.finish("b")
    assert [(c.task_id, c.new) for c in changes.priority_changes] == [("b", 5)]
    assert changes.newly_ready == ("u",)


def test_informs_edges_lend_no_priority() -> None:
    d = Driver()
    d.create("a", 5)
    d.create("u", 1)
    assert d.dep("u", "a", "informs").priority_changes == ()
    assert d.board.effective_priority(tid("a")) == 5


def test_raising_a_dependent_raises_its_blockers_and_events_close_the_loop() -> None:
    d = Driver()
    d.create("a", 4)
    d.create("b", 3)
    d.dep("b", "a")
    changes = d.reprioritize("b", 1)
    assert [(c.task_id, c.old, c.new) for c in changes.priority_changes] == [
        ("a", 3, 1),
        ("b", 3, 1),
    ]
    event = d.board.priority_event(changes.priority_changes[0])
    assert (event.task_id, event.priority, event.effective_priority) == ("a", 4, 1)
    assert event.reason == "inherited from b (p1)"
    assert d.board.apply(event).priority_changes == ()  # appending it changes nothing more
    with pytest.raises(UserError, match="priority must be 1 \\(highest\\) to 5, not 0"):
        d.board.check_priority(tid("a"), 0)


# ---- projection


def test_non_task_events_are_ignored_and_unknown_tasks_are_counted() -> None:
    board = TaskBoard()
    note = UserMessagePosted(session_id=SESSION, message_id=MessageId("m"), text="hi")
    assert board.apply(note).newly_ready == ()
    board.apply(
        TaskStatusChanged(
            session_id=SESSION, task_id=tid("x"), status="completed", previous="pending"
        )
    )
    assert board.ignored == 1
    assert len(board) == 0


def test_check_create_refuses_duplicates_and_bad_input() -> None:
    d = Driver()
    d.create("a")
    with pytest.raises(UserError, match="task 'a' already exists"):
        d.board.check_create(tid("a"), "x", 3)
    with pytest.raises(UserError, match="non-empty title"):
        d.board.check_create(tid("b"), "  ", 3)
    with pytest.raises(UserError, match="not 6"):
        d.board.check_create(tid("b"), "x", 6)


def test_replaying_the_log_rebuilds_the_same_board() -> None:
    d = Driver()
    d.create("a", 5)
    d.create("b", 2)
    d.create("c")
    d.dep("b", "a", "requires_output")
    d.dep("c", "b")
    d.start("a", "ann")
    d.chunk("a", 1, "x", 1, 2)
    d.milestone("a", "m", "ann")
    replayed = TaskBoard()
    for event in d.events:
        replayed.apply(event)  # type: ignore[arg-type]
    assert replayed.tasks() == d.board.tasks()
    assert replayed.ready_tasks() == d.board.ready_tasks()


def test_task_claimed_round_trips_through_the_codec() -> None:
    event = TaskClaimed(
        session_id=SESSION,
        task_id=tid("a"),
        owner=aid("bob"),
        owner_name="Bob",
        previous_owner=aid("ann"),
        reason="ann has 3 queued tasks",
    )
    kind, version, payload = encode_event(event)
    assert kind == "task_claimed"
    assert decode_event(kind, version, payload) == event

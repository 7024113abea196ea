"""Tests of the pure assignment policy (SPEC §3.10) and of priority inheritance in plans."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_tasks_driver import SESSION, TEAM, Driver, aid, tid

from loomkin.core.events.tasks import TaskAssigned, TaskCreated, TaskStatusChanged
from loomkin.core.scheduling import (
    AgentCandidate,
    CapabilityStats,
    capability_score,
    choose_agent,
    infer_task_type,
    plan_assignments,
)
from loomkin.core.tasks import TaskView


def agent(name: str, role: str = "", idle: bool = True) -> AgentCandidate:
    return AgentCandidate(agent_id=aid(name), name=name, role=role, idle=idle)


def task(title: str = "do it", role: str = "") -> TaskView:
    return TaskView(task_id=tid("t"), session_id=SESSION, team_id=TEAM, title=title, role=role)


# ---- task types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Implement the login endpoint", "coding"),
        ("Investigate and explore the slow query", "research"),
        ("Review and audit the PR", "review"),
        ("Increase test coverage", "testing"),
        ("Design and outline the architecture", "planning"),
        ("Update the README", "documentation"),
        ("Diagnose the crash", "debugging"),
        ("Setup docker pipeline", "infrastructure"),
        ("", "coding"),
        (None, "coding"),
        ("zzz", "coding"),
    ],
)
def test_infer_task_type(text: str | None, expected: str) -> None:
    assert infer_task_type(text) == expected


def test_infer_task_type_counts_distinct_keywords_and_breaks_ties_alphabetically() -> None:
    # "debug" (debugging) vs "review" (review): one hit each → alphabetical: debugging.
    assert infer_task_type("review debug") == "debugging"
    # A keyword repeated still counts once: review ×3 vs test + unit (testing, 2 hits).
    assert infer_task_type("review review review unit test") == "testing"


def test_capability_score_formula() -> None:
    assert capability_score(0, 0) == 0.0
    assert capability_score(3, 3) == pytest.approx(2.0)
    assert capability_score(1, 2) == pytest.approx(0.5 * math.log2(3))


@given(st.integers(0, 50), st.integers(0, 50))
def test_capability_score_grows_with_experience_at_equal_rate(successes: int, extra: int) -> None:
    total = successes + extra
    if total:
        assert capability_score(2 * successes, 2 * total) >= capability_score(successes, total)


# ---- capability stats


def test_capability_stats_follow_completed_and_failed_tasks_of_owners() -> None:
    stats = CapabilityStats()
    events = [
        TaskCreated(session_id=SESSION, task_id=tid("a"), team_id=TEAM, title="Write unit tests"),
        TaskCreated(session_id=SESSION, task_id=tid("b"), team_id=TEAM, title="Add test specs"),
        TaskCreated(session_id=SESSION, task_id=tid("c"), team_id=TEAM, title="Fix the bug"),
        TaskAssigned(session_id=SESSION, task_id=tid("a"), owner=aid("ann"), owner_name="Ann"),
        TaskAssigned(session_id=SESSION, task_id=tid("b"), owner=aid("ann"), owner_name="Ann"),
        TaskStatusChanged(
            session_id=SESSION, task_id=tid("a"), status="completed", previous="in_progress"
        ),
        TaskStatusChanged(
            session_id=SESSION, task_id=tid("b"), status="failed", previous="in_progress"
        ),
        # Unowned: nobody to credit.
        TaskStatusChanged(
            session_id=SESSION, task_id=tid("c"), status="failed", previous="pending"
        ),
    ]
    for event in events:
        stats.apply(event)
    assert stats.counts(aid("ann"), "testing") == (1, 2)
    assert stats.score(aid("ann"), "testing") == pytest.approx(0.5 * math.log2(3))
    assert stats.counts(aid("ann"), "debugging") == (0, 0)


# ---- choosing one agent


def test_idle_agents_come_first_even_with_a_worse_record() -> None:
    stats = CapabilityStats()
    for _ in range(5):
        stats.record(aid("busy"), "coding", success=True)
    choice = choose_agent(task(), [agent("busy", idle=False), agent("free")], stats, {})
    assert choice is not None
    assert choice.agent_id == "free"
    assert "free is idle" in choice.reason
    assert "no coding history yet" in choice.reason


def test_role_match_is_preferred_among_idle_agents() -> None:
    stats = CapabilityStats()
    stats.record(aid("coder"), "testing", success=True)
    candidates = [agent("coder", role="coder"), agent("tess", role="tester")]
    choice = choose_agent(task("Write tests", role="tester"), candidates, stats, {})
    assert choice is not None
    assert choice.agent_id == "tess"
    assert "role 'tester' matches" in choice.reason


def test_best_capability_then_least_loaded_then_name() -> None:
    stats = CapabilityStats()
    stats.record(aid("bo"), "testing", success=True)
    stats.record(aid("bo"), "testing", success=True)
    stats.record(aid("al"), "testing", success=True)
    candidates = [agent("al"), agent("bo"), agent("cy")]
    choice = choose_agent(task("Run the unit tests"), candidates, stats, {})
    assert choice is not None
    assert choice.agent_id == "bo"
    assert "best at testing (score 1.58, 2/2 succeeded)" in choice.reason
    fresh = CapabilityStats()
    choice = choose_agent(task(), candidates, fresh, {aid("al"): 2, aid("bo"): 1, aid("cy"): 1})
    assert choice is not None
    assert choice.agent_id == "bo"  # least loaded, then by name
    assert "1 active task" in choice.reason


def test_busy_agents_are_used_when_nobody_is_idle_and_no_candidates_gives_none() -> None:
    stats = CapabilityStats()
    candidates = [agent("al", idle=False), agent("bo", idle=False)]
    choice = choose_agent(task(), candidates, stats, {aid("al"): 3, aid("bo"): 1})
    assert choice is not None
    assert choice.agent_id == "bo"
    assert "busy (no idle agent)" in choice.reason
    assert choose_agent(task(), [], stats, {}) is None


@given(st.permutations(["al", "bo", "cy", "di"]))
def test_choice_does_not_depend_on_candidate_order(names: list[str]) -> None:
    stats = CapabilityStats()
    stats.record(aid("cy"), "coding", success=False)
    candidates = [agent(n) for n in names]
    choice = choose_agent(task(), candidates, stats, {aid("al"): 1})
    assert choice is not None
    assert choice.agent_id == "bo"


# ---- plans


def test_plan_pairs_tasks_by_priority_with_one_task_per_idle_agent() -> None:
    d = Driver()
    d.create("low", 5)
    d.create("high", 1)
    d.create("mid", 3)
    agents = [agent("al"), agent("bo"), agent("cy", idle=False)]
    plan = plan_assignments(d.board.ready_tasks(), agents, CapabilityStats(), d.board.load())
    assert [(a.task_id, a.agent_id) for a in plan] == [("high", "al"), ("mid", "bo")]
    assert plan[0].reason.startswith("most urgent ready task: p1; al is idle")


def test_priority_inversion_is_avoided_by_inheritance() -> None:
    """L (p5) blocks U (p1); M1..M3 (p3) compete for the single agent: L must go first."""
    d = Driver()
    d.create("L", 5, title="Migrate the schema")
    for name in ("M1", "M2", "M3"):
        d.create(name, 3)
    d.create("U", 1, title="Hotfix the outage")
    d.dep("U", "L")
    ready = d.board.ready_tasks()
    assert [v.task_id for v in ready] == ["L", "M1", "M2", "M3"]
    plan = plan_assignments(ready, [agent("solo")], CapabilityStats(), {})
    assert [a.task_id for a in plan] == ["L"]
    assert "p1 inherited from U (own priority p5)" in plan[0].reason
    # Without inheritance (ordering by base priority) the medium tasks would starve U.
    by_base = sorted(ready, key=lambda v: (v.priority, v.created_order))
    assert by_base[0].task_id == "M1"
    # Once L is done, U is newly ready and outranks the medium tasks.
    d.assign("L", "solo")
    d.status("L", "in_progress")
    changes = d.status("L", "completed", result="migrated")
    assert changes.newly_ready == ("U",)
    assert d.board.effective_priority(tid("L")) == 5
    plan = plan_assignments(d.board.ready_tasks(), [agent("solo")], CapabilityStats(), {})
    assert [a.task_id for a in plan] == ["U"]

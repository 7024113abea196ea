"""The forecast the speculation policy prices savings with: critical path from now."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from loomkin.coordination.speculation.forecast import Forecast, Timeline, forecast
from loomkin.core.events import (
    DependencyAdded,
    MilestoneEmitted,
    TaskAssigned,
    TaskCreated,
    TaskStatusChanged,
)
from loomkin.core.tasks import TaskBoard
from loomkin.ids import AgentId, SessionId, TaskId, TeamId

SESSION = SessionId("s")
TEAM = TeamId("t")


class Graph:
    """A board plus the timeline folded from the same events, at chosen times."""

    def __init__(self) -> None:
        self.board = TaskBoard()
        self.timeline = Timeline()

    def _apply(self, event: object, at: float = 0.0) -> None:
        self.board.apply(event)  # type: ignore[arg-type]
        self.timeline.apply(event, at, self._work)  # type: ignore[arg-type]

    def _work(self, task_id: TaskId) -> float:
        view = self.board.get(task_id)
        return 0.0 if view is None else view.work_s

    def task(self, name: str, work_s: float) -> None:
        self._apply(
            TaskCreated(
                session_id=SESSION, task_id=TaskId(name), team_id=TEAM, title=name, work_s=work_s
            )
        )

    def dep(self, task: str, on: str, milestone: str | None = None) -> None:
        kind = "requires_output" if milestone else "blocks"
        self._apply(
            DependencyAdded(
                session_id=SESSION,
                task_id=TaskId(task),
                depends_on=TaskId(on),
                dep_kind=kind,
                milestone=milestone,
            )
        )

    def start(self, name: str, at: float) -> None:
        tid = TaskId(name)
        self._apply(
            TaskAssigned(session_id=SESSION, task_id=tid, owner=AgentId("a"), owner_name="A")
        )
        self._apply(
            TaskStatusChanged(
                session_id=SESSION, task_id=tid, status="in_progress", previous="assigned"
            ),
            at,
        )

    def milestone(self, name: str, milestone: str, at: float) -> None:
        self._apply(MilestoneEmitted(session_id=SESSION, task_id=TaskId(name), name=milestone), at)

    def forecast(self, now: float, *, workers: int = 100, start_now: str | None = None) -> Forecast:
        return forecast(
            self.board,
            self.board.tasks(),
            self.timeline,
            now,
            workers=workers,
            start_now=None if start_now is None else TaskId(start_now),
        )


def chain() -> Graph:
    """a (running since 0, 1000 s) → b on a's ``interface`` → c on b's completion; d on a, short."""
    g = Graph()
    for name, work in (("a", 1000.0), ("b", 2000.0), ("c", 500.0), ("d", 100.0)):
        g.task(name, work)
    g.dep("b", "a", "interface")
    g.dep("c", "b")
    g.dep("d", "a")
    g.start("a", 0.0)
    return g


def test_the_forecast_follows_edges_and_unknown_milestones_fall_halfway() -> None:
    g = chain()
    f = g.forecast(0.0)
    assert f.ready_at[TaskId("b")] == 500.0  # no milestone seen yet: ½ of a's work
    assert f.finish[TaskId("b")] == 2500.0
    assert f.finish[TaskId("c")] == 3000.0
    assert f.makespan == 3000.0


def test_milestone_fractions_are_learnt_from_the_ones_seen() -> None:
    g = chain()
    g.task("x", 400.0)
    g.start("x", 0.0)
    g.milestone("x", "interface", 100.0)  # at 25 % of x's work
    f = g.forecast(100.0)
    assert f.ready_at[TaskId("b")] == 250.0
    assert f.makespan == 250.0 + 2000.0 + 500.0


def test_starting_a_critical_task_now_saves_its_wait_and_one_with_slack_saves_nothing() -> None:
    g = chain()
    base = g.forecast(0.0)
    critical = g.forecast(0.0, start_now="b")
    assert base.makespan - critical.makespan == 500.0  # b no longer waits for a's interface
    slack = g.forecast(0.0, start_now="d")  # d ends long before c whatever happens
    assert slack.makespan == base.makespan


def test_few_workers_bound_the_forecast_by_the_remaining_work() -> None:
    g = chain()
    assert g.forecast(0.0, workers=1).makespan == 1000.0 + 2000.0 + 500.0 + 100.0


@settings(max_examples=60, deadline=None)
@given(
    works=st.lists(st.floats(min_value=1.0, max_value=5000.0), min_size=2, max_size=8),
    edges=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.booleans()), max_size=14),
    now=st.floats(min_value=0.0, max_value=1000.0),
    pick=st.integers(0, 7),
)
def test_starting_any_task_now_never_makes_the_forecast_later(
    works: list[float], edges: list[tuple[int, int, bool]], now: float, pick: int
) -> None:
    # Any acyclic graph (edges only from a later task to an earlier one): starting a waiting
    # task early can only move finishes earlier, so the saving the policy prices is never < 0,
    # and every task's forecast finish is at least now.
    g = Graph()
    for i, work in enumerate(works):
        g.task(f"t{i}", work)
    seen = set()
    for a, b, milestone in edges:
        if a < len(works) and b < a and (a, b) not in seen:
            seen.add((a, b))
            g.dep(f"t{a}", f"t{b}", "interface" if milestone else None)
    g.start("t0", 0.0)
    base = g.forecast(now)
    target = f"t{1 + pick % (len(works) - 1)}"  # a task not started yet (t0 runs)
    ahead = g.forecast(now, start_now=target)
    assert ahead.makespan <= base.makespan + 1e-6
    assert all(t >= now - 1e-6 for t in base.finish.values())
    assert base.makespan >= max(base.finish.values()) - 1e-6

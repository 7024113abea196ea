"""Property tests of the task board: acyclicity, readiness and priority inheritance hold always."""

from __future__ import annotations

import contextlib
import graphlib
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from test_tasks_driver import Driver, aid, tid

from loomkin.core.records import TASK_STATUSES
from loomkin.core.tasks import FINISHED_STATUSES, TRANSITIONS, TaskBoard
from loomkin.errors import InvalidTransition, PolicyRefused, TaskCycleError, UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.core.records import DepKind
    from loomkin.core.tasks import BoardChanges, Dependency
    from loomkin.ids import TaskId

KINDS: list[DepKind] = ["blocks", "informs", "requires_output"]
MILESTONES = [None, None, "m1", "m2"]
AGENTS = ["ann", "bob", "cy"]


def snapshot(board: TaskBoard) -> object:
    tasks = board.tasks()
    return (
        tasks,
        [board.dependencies(t.task_id) for t in tasks],
        board.ready_tasks(),
        board.ignored,
    )


def assert_acyclic(board: TaskBoard) -> list[TaskId]:
    sorter: graphlib.TopologicalSorter[TaskId] = graphlib.TopologicalSorter()
    for task in board.tasks():
        sorter.add(
            task.task_id, *[d.depends_on for d in board.dependencies(task.task_id) if d.blocking]
        )
    order = list(sorter.static_order())  # raises CycleError on a cycle
    position = {t: i for i, t in enumerate(order)}
    for task in board.tasks():
        for dep in board.dependencies(task.task_id):
            if dep.blocking:
                assert position[dep.depends_on] < position[dep.task_id]
    return order


def reaches(board: TaskBoard, start: str, goal: str) -> bool:
    """Whether ``start`` waits, through blocking edges, for ``goal`` (breadth-first)."""
    seen, frontier = {start}, [start]
    while frontier:
        current = frontier.pop()
        for dep in board.dependencies(tid(current)):
            if dep.blocking and dep.depends_on not in seen:
                if dep.depends_on == goal:
                    return True
                seen.add(dep.depends_on)
                frontier.append(dep.depends_on)
    return False


def oracle_met(board: TaskBoard, dep: Dependency, produced: set[TaskId]) -> bool:
    pred = board.task(dep.depends_on)
    if dep.milestone is not None:
        return dep.milestone in pred.milestones or pred.status == "completed"
    if dep.kind == "blocks":
        return pred.status == "completed"
    if dep.kind == "requires_output":
        return pred.status == "completed" or dep.depends_on in produced
    return True


def oracle_lends(board: TaskBoard, dep: Dependency) -> bool:
    if not dep.blocking or board.task(dep.task_id).status in FINISHED_STATUSES:
        return False
    pred = board.task(dep.depends_on)
    if dep.milestone is not None:
        return dep.milestone not in pred.milestones and pred.status != "completed"
    return pred.status != "completed"


def oracle_effective(board: TaskBoard) -> dict[TaskId, int]:
    memo: dict[TaskId, int] = {}

    def eff(task_id: TaskId) -> int:
        if task_id not in memo:
            lent = [
                eff(dep.task_id) for dep in board.dependents(task_id) if oracle_lends(board, dep)
            ]
            memo[task_id] = min([board.task(task_id).priority, *lent])
        return memo[task_id]

    return {task.task_id: eff(task.task_id) for task in board.tasks()}


# ---- plain properties


@settings(max_examples=200)
@given(
    n=st.integers(min_value=2, max_value=8),
    attempts=st.lists(
        st.tuples(
            st.integers(0, 7),
            st.integers(0, 7),
            st.sampled_from(KINDS),
            st.sampled_from(MILESTONES),
        ),
        max_size=40,
    ),
)
def test_graph_stays_acyclic_and_refused_edges_change_nothing(
    n: int, attempts: list[tuple[int, int, DepKind, str | None]]
) -> None:
    d = Driver()
    for i in range(n):
        d.create(f"t{i}")
    for a, b, kind, milestone in attempts:
        a, b = a % n, b % n
        before = snapshot(d.board)
        try:
            d.dep(f"t{a}", f"t{b}", kind, milestone)
        except TaskCycleError:
            assert snapshot(d.board) == before
            refused = True
        else:
            refused = False
        assert refused == (a == b or (kind != "informs" and reaches(d.board, f"t{b}", f"t{a}")))
        assert_acyclic(d.board)


@settings(max_examples=200)
@given(
    priorities=st.lists(st.integers(1, 5), min_size=1, max_size=10),
    edges=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=20),
)
def test_ready_tasks_are_ordered_by_effective_priority_then_creation(
    priorities: list[int], edges: list[tuple[int, int]]
) -> None:
    d = Driver()
    n = len(priorities)
    for i, priority in enumerate(priorities):
        d.create(f"t{i}", priority)
    for a, b in edges:
        with contextlib.suppress(TaskCycleError):
            d.dep(f"t{a % n}", f"t{b % n}")
    ready = d.board.ready_tasks()
    keys = [(v.effective_priority, v.created_order) for v in ready]
    assert keys == sorted(keys)
    assert all(not d.board.waiting_on(v.task_id) for v in ready)
    assert oracle_effective(d.board) == {v.task_id: v.effective_priority for v in d.board.tasks()}


# ---- the state machine


class TaskBoardMachine(RuleBasedStateMachine):
    """Random sequences of checked operations; refused ones must leave the board unchanged.

    Rules mostly pick moves the table allows (and a "progress" rule walks tasks toward
    completion) so runs reach deep states; some picks are arbitrary, to exercise refusals.
    """

    def __init__(self) -> None:
        super().__init__()
        self.d = Driver()
        self.count = 0
        self.produced: set[TaskId] = set()
        """Tasks that have produced output (chunk or partially_complete) at some point."""

    @property
    def board(self) -> TaskBoard:
        return self.d.board

    def pick(self, index: int) -> TaskId:
        return tid(f"t{index % self.count}")

    def attempt(self, action: Callable[[], BoardChanges]) -> None:
        """Run a checked action; verify its reported changes or that a refusal changed nothing."""
        before = snapshot(self.board)
        ready_before = {v.task_id for v in self.board.ready_tasks()}
        eff_before = {v.task_id: v.effective_priority for v in self.board.tasks()}
        try:
            changes = action()
        except (InvalidTransition, PolicyRefused, TaskCycleError, UserError):
            assert snapshot(self.board) == before
            return
        ready_after = {v.task_id for v in self.board.ready_tasks()}
        assert set(changes.newly_ready) == ready_after - ready_before
        eff_after = {v.task_id: v.effective_priority for v in self.board.tasks()}
        moved = {
            (t, eff_before[t], e)
            for t, e in eff_after.items()
            if t in eff_before and eff_before[t] != e
        }
        assert {(c.task_id, c.old, c.new) for c in changes.priority_changes} == moved
        for task in self.board.tasks():
            if task.status == "partially_complete" or task.partial_chunks:
                self.produced.add(task.task_id)

    @initialize(priorities=st.lists(st.integers(1, 5), min_size=2, max_size=5))
    def first_tasks(self, priorities: list[int]) -> None:
        for priority in priorities:
            self.create(priority)

    @precondition(lambda self: self.count < 9)
    @rule(priority=st.integers(1, 5))
    def create(self, priority: int) -> None:
        name = f"t{self.count}"
        self.count += 1
        self.attempt(lambda: self.d.create(name, priority))

    @rule(
        a=st.integers(0, 8),
        b=st.integers(0, 8),
        kind=st.sampled_from(KINDS),
        milestone=st.sampled_from(MILESTONES),
    )
    def add_dependency(self, a: int, b: int, kind: DepKind, milestone: str | None) -> None:
        self.attempt(lambda: self.d.dep(self.pick(a), self.pick(b), kind, milestone))

    @rule(task=st.integers(0, 8), agent=st.sampled_from(AGENTS))
    def assign(self, task: int, agent: str) -> None:
        self.attempt(lambda: self.d.assign(self.pick(task), agent))

    @rule(task=st.integers(0, 8), agent=st.sampled_from(AGENTS), honest=st.booleans())
    def claim(self, task: int, agent: str, honest: bool) -> None:
        owner = self.board.task(self.pick(task)).owner_id if honest else aid("ann")
        self.attempt(lambda: self.d.claim(self.pick(task), agent, owner))

    @rule(task=st.integers(0, 8), data=st.data(), arbitrary=st.booleans())
    def change_status(self, task: int, data: st.DataObject, arbitrary: bool) -> None:
        current = self.board.task(self.pick(task)).status
        choices = sorted(TRANSITIONS[current]) if not arbitrary else []
        status = data.draw(st.sampled_from(choices or list(TASK_STATUSES)))
        self.attempt(lambda: self.d.status(self.pick(task), status, result=f"{status} result"))

    @rule(task=st.integers(0, 8), agent=st.sampled_from(AGENTS))
    def progress(self, task: int, agent: str) -> None:
        """Take the natural next step: assign, start, complete."""
        name = self.pick(task)
        match self.board.task(name).status:
            case "pending":
                self.attempt(lambda: self.d.assign(name, agent))
            case "assigned" | "paused" | "blocked" | "partially_complete":
                self.attempt(lambda: self.d.status(name, "in_progress"))
            case _:
                self.attempt(lambda: self.d.status(name, "completed", result="done"))

    @rule(task=st.integers(0, 8), name=st.sampled_from(["m1", "m2"]), owner=st.booleans())
    def emit_milestone(self, task: int, name: str, owner: bool) -> None:
        by = self.board.task(self.pick(task)).owner_id if owner else None
        self.attempt(lambda: self.d.milestone(self.pick(task), name, by or "nobody"))

    @rule(task=st.integers(0, 8), skip=st.integers(0, 2))
    def publish_chunk(self, task: int, skip: int) -> None:
        chunks = self.board.task(self.pick(task)).partial_chunks
        seq = (chunks[-1].seq if chunks else 0) + skip
        self.attempt(lambda: self.d.chunk(self.pick(task), seq, f"chunk {seq}", seq, 10))

    @rule(task=st.integers(0, 8), priority=st.integers(0, 6))
    def reprioritize(self, task: int, priority: int) -> None:
        self.attempt(lambda: self.d.reprioritize(self.pick(task), priority))

    @invariant()
    def graph_is_acyclic(self) -> None:
        assert_acyclic(self.board)

    @invariant()
    def ready_tasks_are_exactly_the_available_ones(self) -> None:
        expected = set()
        for task in self.board.tasks():
            met = all(
                oracle_met(self.board, dep, self.produced)
                for dep in self.board.dependencies(task.task_id)
                if dep.blocking
            )
            assert self.board.is_ready(task.task_id) == met
            if task.status == "pending" and task.owner is None and met:
                expected.add(task.task_id)
        ready = self.board.ready_tasks()
        assert {v.task_id for v in ready} == expected
        keys = [(v.effective_priority, v.created_order) for v in ready]
        assert keys == sorted(keys)

    @invariant()
    def priority_inheritance_holds(self) -> None:
        board = self.board
        assert oracle_effective(board) == {v.task_id: v.effective_priority for v in board.tasks()}
        for task in board.tasks():
            assert task.effective_priority <= task.priority
            for dep in board.dependents(task.task_id):
                if oracle_lends(board, dep):
                    assert task.effective_priority <= board.effective_priority(dep.task_id)

    @invariant()
    def owners_match_statuses(self) -> None:
        for task in self.board.tasks():
            if task.status in ("pending", "pending_speculative"):
                assert task.status != "pending" or task.owner is None
            if task.status in ("assigned", "in_progress"):
                assert task.owner is not None

    def teardown(self) -> None:
        replayed = TaskBoard()
        for event in self.d.events:
            replayed.apply(event)  # type: ignore[arg-type]
        assert replayed.tasks() == self.board.tasks()
        assert replayed.ready_tasks() == self.board.ready_tasks()


TaskBoardMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
test_task_board_state_machine = TaskBoardMachine.TestCase

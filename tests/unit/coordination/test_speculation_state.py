"""What the speculation state learns from checks: only real guesses are evidence."""

from __future__ import annotations

from loomkin.coordination.speculation.state import SpeculationState
from loomkin.core.events import SpeculationStarted, SpeculationValidated
from loomkin.ids import AgentId, SessionId, TaskId

SESSION = SessionId("s")
TASK = TaskId("t")


def started(blockers: tuple[str, ...]) -> SpeculationStarted:
    return SpeculationStarted(
        session_id=SESSION,
        task_id=TASK,
        agent_id=AgentId("a"),
        agent_name="A",
        blockers=tuple(TaskId(b) for b in blockers),
        workspace="/tmp/ws",
        workspace_kind="overlay",
        dep_kind="blocks",
        role="coder",
    )


def checked(on: str, *, held: bool, guessed: bool) -> SpeculationValidated:
    verdicts = ({"assumption_id": "as_1", "holds": held},) if guessed else ()
    return SpeculationValidated(
        session_id=SESSION, task_id=TASK, on_task=TaskId(on), held=held, verdicts=verdicts
    )


def test_a_blocker_nothing_was_assumed_about_is_not_evidence() -> None:
    # One guess about ``a``; ``b`` and ``c`` pass vacuously. Counting them would make one
    # guess look like three successes and open the budget for big bets on no evidence.
    state = SpeculationState(alpha=1.0, beta=1.0)
    state.apply(started(("a", "b", "c")), 0.0)
    state.apply(checked("b", held=True, guessed=False), 1.0)
    state.apply(checked("c", held=True, guessed=False), 2.0)
    assert state.rates.counts("blocks", "coder") == (0, 0)
    state.apply(checked("a", held=True, guessed=True), 3.0)
    assert state.rates.counts("blocks", "coder") == (1, 0)
    assert state.rates.held() == 1
    assert state.active[TASK].all_held()
    assert TASK not in state.guessed_wrong


def test_a_failed_check_is_evidence_and_marks_the_task() -> None:
    state = SpeculationState(alpha=1.0, beta=1.0)
    state.apply(started(("a",)), 0.0)
    state.apply(checked("a", held=False, guessed=False), 1.0)  # nothing stated: a failure
    assert state.rates.counts("blocks", "coder") == (0, 1)
    assert TASK in state.guessed_wrong


def test_work_done_ahead_counts_as_earned_only_when_every_check_held_on_a_real_guess() -> None:
    state = SpeculationState(alpha=1.0, beta=1.0)
    state.apply(started(("a", "b")), 10.0)
    state.apply(checked("a", held=True, guessed=True), 40.0)
    assert state.held_s == 0.0  # ``b`` is still to check: nothing is earned yet
    state.apply(checked("b", held=True, guessed=False), 70.0)
    assert state.held_s == 60.0  # 10 → 70: the work done ahead, kept


def test_vacuous_checks_and_failures_earn_nothing() -> None:
    vacuous = SpeculationState(alpha=1.0, beta=1.0)
    vacuous.apply(started(("a",)), 0.0)
    vacuous.apply(checked("a", held=True, guessed=False), 50.0)
    assert vacuous.active[TASK].all_held()
    assert vacuous.held_s == 0.0  # no guess was made: nothing held by judgement
    failed = SpeculationState(alpha=1.0, beta=1.0)
    failed.apply(started(("a", "b")), 0.0)
    failed.apply(checked("a", held=True, guessed=True), 20.0)
    failed.apply(checked("b", held=False, guessed=True), 30.0)
    assert failed.held_s == 0.0

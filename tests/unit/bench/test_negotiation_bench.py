"""The negotiation benchmark: a small run of both sides, its figures and their invariants."""

from __future__ import annotations

from loomkin.bench.__main__ import main
from loomkin.bench.negotiation import negotiation_table, run_negotiation


def test_a_small_run_meets_the_goals_and_is_reproducible() -> None:
    report = run_negotiation(tasks=12, agents=4, seed=3)
    off, on = report["without"], report["with"]
    assert isinstance(off, dict)
    assert isinstance(on, dict)
    assert off["completed"] == on["completed"] == 12
    assert off["negotiation_calls"] == 0  # the baseline never negotiates
    assert on["negotiations_moved"] > 0
    # Every work call is counted: wasted = work beyond one specialist call per task.
    assert off["wasted_calls"] == off["work_calls"] - 12
    assert report["goals"] == {
        "wasted_at_most_half": True,
        "makespan_no_worse": True,
        "at_most_one_extra_call_per_assignment": True,
        "all_completed": True,
    }
    again = run_negotiation(tasks=12, agents=4, seed=3)
    for side in ("without", "with"):
        first, second = dict(report[side]), dict(again[side])  # type: ignore[call-overload]
        assert first == second
    assert "negotiation calls / assignment" in negotiation_table(report)


def test_bad_sizes_are_refused(capsys: object) -> None:
    assert main(["negotiation", "--tasks", "0"]) == 2
    assert main(["negotiation", "--agents", "0"]) == 2

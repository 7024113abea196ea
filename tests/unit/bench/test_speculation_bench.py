"""The speculation benchmark on small graphs: it speculates when guesses are right and
learns to stop when they are wrong (the real orchestrator, in virtual time)."""

from __future__ import annotations

from loomkin.bench.speculation import _holds, run_speculation
from loomkin.bench.workloads import load_workload, synthetic


def test_right_guesses_shorten_the_makespan_without_waste() -> None:
    result = run_speculation(load_workload("httpx"), agents=16, hit_rate=1.0)
    assert result.tasks_completed == result.tasks_total
    assert result.speculations > 0
    assert result.speculations_failed == 0
    assert result.waste_fraction == 0.0
    assert result.makespan_s < result.baseline_makespan_s


def test_wrong_guesses_are_stopped_early() -> None:
    result = run_speculation(load_workload("httpx"), agents=16, hit_rate=0.0)
    assert result.tasks_completed == result.tasks_total
    assert result.speculations_held == 0
    assert 0 < result.speculations <= 4  # a few tries, then the posterior says stop
    assert result.waste_fraction < 0.05
    assert result.makespan_s <= 1.03 * result.baseline_makespan_s


def test_synthetic_graph_completes_and_the_draw_is_seeded() -> None:
    workload = synthetic("layered", size=12, seed=3)
    result = run_speculation(workload, agents=4, hit_rate=0.5, seed=1)
    assert result.tasks_completed == result.tasks_total
    assert _holds(1, "t", 0.5) == _holds(1, "t", 0.5)
    draws = [_holds(7, f"task{i}", 0.3) for i in range(400)]
    assert 0.2 < sum(draws) / len(draws) < 0.4

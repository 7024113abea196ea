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
    assert _holds("w", 1, "t", 0.5) == _holds("w", 1, "t", 0.5)
    draws = [_holds("w", 7, f"task{i}", 0.3) for i in range(400)]
    assert 0.2 < sum(draws) / len(draws) < 0.4


def test_a_task_name_two_workloads_share_draws_independently_in_each() -> None:
    # ``integrate`` ends every bundled workload: keyed by seed and task alone it drew the
    # same value in all of them. Keyed by the workload too, the two draws agree only about
    # as often as two independent coin flips at P = 0.5 (half the seeds), and each stays
    # deterministic.
    seeds = range(400)
    click = [_holds("click", s, "integrate", 0.5) for s in seeds]
    flask = [_holds("flask", s, "integrate", 0.5) for s in seeds]
    assert click == [_holds("click", s, "integrate", 0.5) for s in seeds]
    agree = sum(a == b for a, b in zip(click, flask, strict=True)) / len(click)
    assert 0.4 < agree < 0.6
    both = sum(a and b for a, b in zip(click, flask, strict=True)) / len(click)
    assert 0.17 < both < 0.33  # ≈ 0.5 × 0.5: the draws do not move together


def test_every_task_completes_when_a_blocker_merges_as_a_bet_starts() -> None:
    # flask, 4 agents, seed 0: a probe on flask.views merges at the very moment the policy
    # starts the final integrate ahead of its blockers. The speculation must not list the
    # blocker that just merged (it would wait for a check that never comes, and integrate
    # would never finish); it runs ahead of the others and merges when they complete.
    result = run_speculation(load_workload("flask"), agents=4, hit_rate=0.8, seed=0)
    assert result.tasks_completed == result.tasks_total
    assert result.speculations_held >= 2
    assert result.makespan_s < result.baseline_makespan_s


def test_a_bet_on_streamed_output_is_checked_at_the_first_chunk() -> None:
    # A pipeline stage waits for its predecessor's first chunk (requires_output, no
    # milestone). Checked only at the predecessor's completion, a failed guess held the
    # stage back past the moment it would have started without speculating (1.19 x here).
    pipeline = synthetic("pipeline", size=30, seed=1)
    wrong = run_speculation(pipeline, agents=16, hit_rate=0.2, seed=0)
    assert wrong.tasks_completed == wrong.tasks_total
    assert wrong.makespan_s <= 1.03 * wrong.baseline_makespan_s
    right = run_speculation(pipeline, agents=16, hit_rate=1.0, seed=0)
    assert right.speculations_held > 0
    assert right.speculations_failed == 0


def test_a_probe_that_held_by_chance_does_not_open_a_bet_that_wastes_past_the_goal() -> None:
    # flask, 4 agents, P = 0.2, seed 0: the probe on flask.views holds by chance, then the
    # final integrate (8 % of the work) fails. Placed at once on the posterior mean it
    # wasted 0.075 of all work; under the stake limit it waits until its stake fits.
    result = run_speculation(load_workload("flask"), agents=4, hit_rate=0.2, seed=0)
    assert result.tasks_completed == result.tasks_total
    assert result.speculations_held >= 1  # the lucky probe
    assert result.speculations_failed >= 1  # integrate still bet, smaller
    assert result.waste_fraction <= 0.05
    assert result.makespan_s <= 1.03 * result.baseline_makespan_s

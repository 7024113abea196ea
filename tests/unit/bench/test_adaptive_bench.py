"""The adaptive strategy and the skewed-load scenario of the swarm bench, hand-checked.

SMALL (see ``test_swarm``) with at most 2 agents, a 5 s window and a 10 s spawn cost:
agent000 takes A at 0 (longest path); B waits with nobody idle, so at 5 one agent is spawned;
it onboards until 15, then does B 15–25 and C 25–75. E is ready at 50 (A's interface) but the
team is at its ceiling (a hold); at 75 the new agent takes E (longer path than D) 75–175, and
agent000, free at 100, does D 100–120, then sits idle with nothing waiting and no task still
to come (a surplus agent): retired after half the usual wait of twice the spawn cost, at 130
(the busy agent keeps the team at its floor of one). Makespan 175; agent-seconds
130 + (175 − 5) = 300.
"""

from __future__ import annotations

import json

import pytest

from loomkin.bench.__main__ import main
from loomkin.bench.adaptive import run_skew
from loomkin.bench.swarm import adaptive_settings, run_swarm

from .test_swarm import SMALL


def test_adaptive_matches_the_hand_worked_schedule() -> None:
    settings = adaptive_settings(2, 10.0)
    result = run_swarm(SMALL, agents=2, strategy="adaptive", spawn_cost_s=10.0, autoscale=settings)
    assert result.tasks_completed == 5
    assert result.makespan_s == pytest.approx(175.0, abs=0.5)
    assert result.agent_seconds == pytest.approx(300.0, abs=1.0)
    assert result.peak_agents == 2
    assert result.spawns == 1
    assert result.retires == 1
    assert result.steals == 0


def test_fixed_teams_report_their_lives_too() -> None:
    result = run_swarm(SMALL, agents=2, strategy="self-organizing")
    assert result.agent_seconds == pytest.approx(2 * result.makespan_s, abs=0.5)
    assert (result.peak_agents, result.spawns, result.retires) == (2, 0, 0)


def test_the_command_adds_the_adaptive_fields(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.json"  # type: ignore[operator]
    path.write_text(json.dumps(SMALL.to_json()))
    argv = [
        "swarm", "--workload", str(path), "--strategy", "adaptive", "--max-agents", "2",
        "--spawn-cost-s", "10", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("agent_seconds", "peak_agents", "spawns", "retires", "steals", "makespan_s"):
        assert key in out
    assert out["strategy"] == "adaptive"
    assert out["max_agents"] == 2
    bad = ["swarm", "--workload", str(path), "--strategy", "adaptive", "--max-agents", "0"]
    assert main(bad) == 2


def test_stealing_evens_out_a_skewed_queue() -> None:
    skew = run_skew(tasks=5, agents=3, work_s=100.0)
    # balanced: 5 tasks on 3 agents is two rounds; stolen from one agent's queue, the same
    assert skew["balanced_makespan_s"] == pytest.approx(200.0, abs=0.5)
    assert skew["stealing_makespan_s"] == pytest.approx(200.0, abs=0.5)
    assert skew["steals"] == 3
    assert skew["without_stealing_s"] == 500.0

"""The swarm benchmark against an independent list-scheduling computation on a tiny graph.

Hand-worked answer (2 agents): A=100 (milestone "interface" at 0.5), B=10, C=50 after B,
D=20 after C, E=100 after A's interface (requires_output).
- dependencies: A 0–100 | B 0–10, C 10–60, D 60–80, then E 100–200 → 200.
- phased (waves [A, B], [C, E], [D]): C 100–150, E 100–200, D 200–220 → 220.
- self-organizing: E starts when an agent frees after t=50: B/C agent at 60 → 60–160 → 160.
- critical path with the milestone: A's interface at 50, E 50–150 → 150; total 280 ÷ 2 = 140;
  lower bound 150.
"""

from __future__ import annotations

import json
import sys

import pytest

from loomkin.bench.__main__ import main
from loomkin.bench.graph import (
    Strategy,
    critical_path,
    edge_delay,
    lower_bound,
    priority_order,
    strategy_deps,
    waves,
)
from loomkin.bench.swarm import run_swarm
from loomkin.bench.workloads import DepSpec, TaskSpec, Workload, parse_workload

SMALL = Workload(
    name="small",
    tasks=(
        TaskSpec(id="A", role="coder", work_s=100.0, milestones={"interface": 0.5}),
        TaskSpec(id="B", role="coder", work_s=10.0),
        TaskSpec(id="C", role="coder", work_s=50.0),
        TaskSpec(id="D", role="tester", work_s=20.0),
        TaskSpec(id="E", role="coder", work_s=100.0),
    ),
    deps=(
        DepSpec(task="C", on="B"),
        DepSpec(task="D", on="C"),
        DepSpec(task="E", on="A", kind="requires_output", milestone="interface"),
    ),
)


def list_schedule(workload: Workload, deps: list[DepSpec], agents: int) -> float:
    """Greedy list scheduling, written independently of the runtime: the reference answer."""
    specs = {t.id: t for t in workload.tasks}
    order = [t.id for t in priority_order(workload, deps)]
    start: dict[str, float] = {}
    free = [0.0] * agents
    now = 0.0
    while len(start) < len(specs):
        ready = [
            t
            for t in order
            if t not in start
            and all(
                d.on in start and start[d.on] + (edge_delay(d, specs[d.on]) or 0) <= now
                for d in deps
                if d.task == t and d.kind != "informs"
            )
        ]
        idle = [i for i, f in enumerate(free) if f <= now]
        for task, agent in zip(ready, idle, strict=False):
            start[task] = now
            free[agent] = now + specs[task].work_s
        times = [f for f in free if f > now]
        times += [
            start[d.on] + (edge_delay(d, specs[d.on]) or 0)
            for d in deps
            if d.on in start and start[d.on] + (edge_delay(d, specs[d.on]) or 0) > now
        ]
        now = min(times)
    return max(start[t] + specs[t].work_s for t in specs)


def test_graph_figures_match_the_hand_computation() -> None:
    assert critical_path(SMALL) == 150.0
    assert lower_bound(SMALL, 2) == 150.0
    assert lower_bound(SMALL, 1) == 280.0
    assert waves(SMALL) == [["A", "B"], ["C", "E"], ["D"]]
    expected = {"dependencies": 200.0, "phased": 220.0, "self-organizing": 160.0}
    for strategy, makespan in expected.items():
        deps = strategy_deps(SMALL, strategy)  # type: ignore[arg-type]
        assert list_schedule(SMALL, deps, 2) == makespan


@pytest.mark.parametrize(
    ("strategy", "makespan"),
    [("phased", 220.0), ("dependencies", 200.0), ("self-organizing", 160.0)],
)
def test_the_real_orchestrator_matches_the_independent_schedule(
    strategy: Strategy, makespan: float
) -> None:
    result = run_swarm(SMALL, agents=2, strategy=strategy)
    assert result.makespan_s == pytest.approx(makespan, abs=1e-3)
    assert result.lower_bound_s == 150.0
    assert result.critical_path_s == 150.0
    assert result.tasks_completed == 5
    assert result.total_work_s == 280.0


def test_runs_are_deterministic() -> None:
    first = run_swarm(SMALL, agents=2, strategy="self-organizing", seed=3)
    again = run_swarm(SMALL, agents=2, strategy="self-organizing", seed=3)
    assert (first.makespan_s, first.events, first.model_calls) == (
        again.makespan_s,
        again.events,
        again.model_calls,
    )


def test_a_task_longer_than_the_stream_idle_timeout_still_completes() -> None:
    # One model call stands for a whole task's work: 600 s of silence before the answer,
    # which the loop's idle timeout (120 s by default) must not count as a failed call.
    long = Workload(name="long", tasks=(TaskSpec(id="L", role="coder", work_s=600.0),), deps=())
    result = run_swarm(long, agents=1, strategy="self-organizing")
    assert result.tasks_completed == 1
    assert result.makespan_s == pytest.approx(600.0, abs=1.0)


def test_partial_chunks_flow_through_the_real_tool() -> None:
    data = SMALL.to_json()
    tasks = data["tasks"]
    assert isinstance(tasks, list)
    tasks[0]["partials"] = 4
    streamed = parse_workload(data)
    result = run_swarm(streamed, agents=2, strategy="self-organizing")
    assert result.tasks_completed == 5
    plain = run_swarm(SMALL, agents=2, strategy="self-organizing")
    # chunks at 0.25, 0.5 (with the milestone), 0.75 and 1.0: three more model answers
    assert result.model_calls == plain.model_calls + 3
    assert result.events > plain.events


def test_the_command_prints_the_json_contract(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.json"  # type: ignore[operator]
    path.write_text(json.dumps(SMALL.to_json()))
    argv = ["swarm", "--workload", str(path), "--agents", "2", "--strategy", "phased", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "workload",
        "agents",
        "strategy",
        "makespan_s",
        "lower_bound_s",
        "critical_path_s",
        "total_work_s",
        "utilization",
        "tasks_completed",
        "events",
        "wall_s",
    ):
        assert key in out
    assert out["makespan_s"] == pytest.approx(220.0)
    assert out["agents"] == 2
    assert out["strategy"] == "phased"


def test_a_missing_extra_is_one_line_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As after `pip install loomkin` without the bench extra: looptime cannot be imported.
    monkeypatch.setitem(sys.modules, "looptime", None)
    monkeypatch.delitem(sys.modules, "loomkin.bench.swarm")
    assert main(["swarm", "--synthetic", "fanout", "--size", "4", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: python -m loomkin.bench swarm needs 'looptime', which is not installed: "
        "pip install 'loomkin[bench]'\n"
    )


def test_other_missing_modules_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "loomkin.bench.swarm", None)
    with pytest.raises(ModuleNotFoundError, match=r"loomkin\.bench\.swarm"):
        main(["swarm", "--synthetic", "fanout", "--size", "4"])

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from loomkin.bench.graph import STRATEGIES, critical_path, strategy_deps, topological_order
from loomkin.bench.workloads import (
    SHAPES,
    WorkloadError,
    load_workload,
    parse_workload,
    synthetic,
    workloads_dir,
)

if TYPE_CHECKING:
    from pathlib import Path


def _data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "w",
        "tasks": [
            {"id": "a", "role": "coder", "work_s": 10, "milestones": {"interface": 0.25}},
            {"id": "b", "role": "coder", "work_s": 20},
        ],
        "deps": [{"task": "b", "on": "a", "kind": "requires_output", "milestone": "interface"}],
    }
    data.update(changes)
    return data


def test_a_valid_workload_parses() -> None:
    workload = parse_workload(_data())
    assert workload.total_work() == 30.0
    assert critical_path(workload) == 22.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tasks": []}, "non-empty"),
        ({"deps": [{"task": "b", "on": "zz"}]}, "unknown task 'zz'"),
        ({"deps": [{"task": "b", "on": "a", "kind": "waits"}]}, "kind must be"),
        ({"deps": [{"task": "b", "on": "a", "milestone": "nope"}]}, "no milestone 'nope'"),
        ({"deps": [{"task": "a", "on": "b"}, {"task": "b", "on": "a"}]}, "cycle"),
        ({"tasks": [{"id": "a", "work_s": -1}]}, "positive"),
        ({"tasks": [{"id": "a", "work_s": "x"}]}, "must be float"),
        ({"tasks": [{"id": "a", "work_s": 1}, {"id": "a", "work_s": 1}], "deps": []}, "duplicate"),
    ],
)
def test_bad_workloads_name_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        parse_workload(_data(**changes))


def test_a_missing_file_and_bad_json_are_clear(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="no workload"):
        load_workload(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(WorkloadError, match="not valid JSON"):
        load_workload(bad)


def test_the_folder_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOMKIN_WORKLOADS", str(tmp_path))
    assert workloads_dir() == tmp_path
    (tmp_path / "mine.json").write_text('{"tasks": [{"id": "a", "work_s": 1}]}')
    assert load_workload("mine").name == "mine"


@pytest.mark.parametrize("shape", SHAPES)
def test_synthetic_shapes_are_valid_and_seeded(shape: str) -> None:
    one = synthetic(shape, size=20, seed=1)  # type: ignore[arg-type]
    assert one == synthetic(shape, size=20, seed=1)  # type: ignore[arg-type]
    again = parse_workload(one.to_json())
    assert again.tasks == one.tasks
    for strategy in STRATEGIES:
        topological_order(one, strategy_deps(one, strategy))

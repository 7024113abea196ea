"""``python -m loomkin.bench fuzz``: the JSON contract and the table (a few answers only)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from loomkin.bench.__main__ import main
from loomkin.bench.fuzz import fuzz_table, run_fuzz

if TYPE_CHECKING:
    import pytest

TOTALS = {
    "answers",
    "crashes",
    "hangs",
    "model_call_failures",
    "final_failures",
    "error_results",
    "invalid_requests",
    "unmatched",
}


def test_the_command_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--answers", "20", "--seed", "3", "--driver", "loop", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["totals"]) == TOTALS
    assert report["seed"] == 3
    (driver,) = report["drivers"]
    assert driver["driver"] == "loop"
    assert driver["answers"] >= 20
    assert driver["crashes"] == driver["hangs"] == driver["unmatched"] == 0
    assert sum(k["answers"] for k in driver["by_kind"].values()) == driver["answers"]


def test_a_seed_reproduces_the_answers() -> None:
    first = run_fuzz(30, 5, ("loop",))
    second = run_fuzz(30, 5, ("loop",))
    # Everything but the clocks (file reads run in threads, which move virtual time a little).
    clocks = ("wall_s", "virtual_s")
    same = [
        [{k: v for k, v in d.items() if k not in clocks} for d in r["drivers"]]  # type: ignore[attr-defined]
        for r in (first, second)
    ]
    assert same[0] == same[1]
    assert "loop" in fuzz_table(first)


def test_bad_sizes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--answers", "0"]) == 2
    assert "--answers must be at least 1" in capsys.readouterr().err

"""Issue #4: SIGKILL a scripted session at random points, restart it, and check nothing re-ran.

The fork server and the scenario live in :mod:`loomkin.bench.faults` (shared with
``python -m loomkin.bench faults``, which runs more trials): each attempt runs in a fresh
process on a SQLite store. The parent reads the lines the attempt prints (one per committed
event) and kills it with SIGKILL after a random number of them, never after a fixed sleep;
then it resumes the session in a new process, possibly killing that one too, and finally
lets it finish. Across all trials: no tool call started twice, every side-effect line is
unique, every task completes, and no acknowledged event is lost.
"""

from __future__ import annotations

import collections
import random
from typing import TYPE_CHECKING

import pytest

from loomkin.bench.faults import Server, run_trial

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

TRIALS = 50


def test_sigkill_at_random_points_never_reruns_a_completed_tool_call(tmp_path: Path) -> None:
    rng = random.Random(20240604)
    server = Server()
    kills = 0
    outcomes: collections.Counter[str] = collections.Counter()
    duplicates: list[str] = []
    try:
        for trial in range(TRIALS):
            result = run_trial(server, tmp_path, trial, rng)
            kills += result.kills
            report = result.report
            assert report is not None, f"trial {trial} never finished"
            lines = result.side_lines
            duplicates += [f"trial {trial}: {x}" for x in result.duplicates()]
            assert report["started_twice"] == [], f"trial {trial}: {report}"
            assert report["tasks"] == {"task-ann": "completed", "task-ben": "completed"}, (
                trial,
                str(tmp_path / f"t{trial}.db"),
                report,
            )
            ok = result.outcomes().get("ok", 0)
            assert (
                len(lines) >= ok - 2
            )  # every completed shell call left its line (2 task_completes)
            assert result.events_seen <= report["events"], report  # no acknowledged event lost
            outcomes.update(result.outcomes())
    finally:
        server.close()
    print(
        f"\nfault injection: {TRIALS} trials, {kills} kills, {len(duplicates)} duplicates, "
        f"tool outcomes {dict(outcomes)}"
    )
    assert duplicates == []
    assert kills >= TRIALS * 0.8
    assert outcomes["interrupted"] >= 1  # some kills landed while a tool call was running

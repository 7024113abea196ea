"""Issues #4 and #15: SIGKILL scripted sessions anywhere, run two processes at once, check.

The fork server, the scenario and the checks live in :mod:`loomkin.bench.faults` (shared with
``python -m loomkin.bench faults``, which runs hundreds of trials). Here a few trials of each
kind run on SQLite and on the real Postgres server: runs killed after a random number of
committed events or right after a control's acknowledgement, two processes resuming one
session at once, a second process refused while the first runs, and a take-over. Every
"must be 0" figure is 0, and the kills really landed where they should.
"""

from __future__ import annotations

import pytest

from loomkin.bench.faults import KINDS, MUST_BE_ZERO, run_faults
from loomkin.testing.conformance import postgres_test_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _check(figures: dict[str, int], trials: int) -> None:
    assert figures["trials"] == trials
    assert {key: figures.get(key, 0) for key in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0)
    assert figures["kills"] >= trials // 2
    assert figures["two_process_trials"] == trials - trials // len(KINDS)
    assert figures["runs_refused_held"] >= 1  # a second process was turned away
    assert figures["controls_acknowledged"] >= trials * 4


def test_sigkills_and_second_processes_on_sqlite() -> None:
    result = run_faults(trials=12, seed=15)
    figures = result["sqlite"]
    assert isinstance(figures, dict)
    _check(figures, 12)


@pytest.mark.postgres
def test_sigkills_and_second_processes_on_postgres() -> None:
    result = run_faults(trials=0, postgres_trials=8, postgres_url=postgres_test_url(), seed=16)
    figures = result["postgres"]
    assert isinstance(figures, dict)
    _check(figures, 8)

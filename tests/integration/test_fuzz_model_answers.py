"""Issue #14: thousands of malformed model answers, through the real loop and the real SDKs.

Seeded, in virtual time (idle timeouts and retry backoffs cost nothing): 2,000 answers played
by a fake model, 2,000 served over HTTP to the ``openai`` SDK and 500 to the ``anthropic``
SDK, every one through real agents. None may crash an agent, leave one busy for ever, or
produce a request either provider would reject. ``python -m loomkin.bench fuzz`` runs more.
"""

from __future__ import annotations

import pytest

from loomkin.bench.fuzz import Driver, FuzzResult, fuzz
from loomkin.testing.faults import ANTHROPIC_FAULTS, LOOP_FAULTS, OPENAI_FAULTS

SEED = 14

KINDS = {"loop": LOOP_FAULTS, "openai": OPENAI_FAULTS, "anthropic": ANTHROPIC_FAULTS}


def check(result: FuzzResult, answers: int, driver: Driver) -> None:
    assert result.answers >= answers
    assert result.crashes == 0, result.problems
    assert result.hangs == 0, result.problems
    assert result.invalid_requests == 0, result.problems
    assert result.unmatched == 0, result.problems
    # Every kind of fault was served, and the faults did what they are for: failed calls
    # were journaled and retried, bad arguments came back as error results.
    assert set(result.by_kind) == set(KINDS[driver])
    assert result.model_call_failures > 0
    assert result.error_results > 0
    assert result.final_failures < result.model_call_failures  # most failures were retried


@pytest.mark.parametrize(
    ("driver", "answers"), [("loop", 2000), ("openai", 2000), ("anthropic", 500)]
)
def test_no_malformed_answer_crashes_or_hangs_an_agent(driver: Driver, answers: int) -> None:
    check(fuzz(answers, SEED, driver), answers, driver)

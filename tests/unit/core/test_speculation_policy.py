"""The pure part of speculation: payloads, exact checks, the posterior and the decision."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.speculation import (
    HitRates,
    SpeculationCosts,
    SpeculationPolicy,
    decide,
    handoff_payload,
    same_value,
)


def test_payload_reads_hand_off_fields_and_name_value_lines() -> None:
    payload = handoff_payload(
        result="done\nversion = 2",
        files_changed=["b.py", "a.py"],
        decisions=["signature: def parse(text: str) -> Ast", "no colon here"],
        note="schema: users(id int)",
    )
    assert payload["signature"] == "def parse(text: str) -> Ast"
    assert payload["version"] == "2"
    assert payload["schema"] == "users(id int)"
    assert payload["files_changed"] == ("a.py", "b.py")
    assert payload["note"] == "schema: users(id int)"
    assert "no colon here" in payload["decisions"]  # type: ignore[operator]


def test_exact_comparison() -> None:
    assert same_value(" def f() ", "def f()")
    assert not same_value("def f()", "def g()")
    assert same_value(["a.py", "b.py"], ("b.py", "a.py"))
    assert not same_value("1", 1)
    assert same_value(3, 3)
    assert not same_value({"a": 1}, {"a": 2})


def test_posterior_learns_per_pair_and_pools_the_others() -> None:
    rates = HitRates(alpha=1.0, beta=1.0)
    assert rates.mean("blocks", "coder") == 0.5
    for _ in range(8):
        rates.record("blocks", "coder", held=True)
    rates.record("blocks", "coder", held=False)
    assert rates.mean("blocks", "coder") == (1 + 8) / (2 + 9)
    # An unseen pair starts from the others' outcomes at half weight, not the bare prior.
    assert rates.mean("requires_output", "tester") == (1 + 4) / (2 + 4.5)
    assert rates.cautious("blocks", "coder") < rates.mean("blocks", "coder")


@given(st.lists(st.booleans(), max_size=40), st.booleans())
def test_posterior_stays_in_range_and_moves_with_each_outcome(
    outcomes: list[bool], held: bool
) -> None:
    rates = HitRates()
    for outcome in outcomes:
        rates.record("k", "r", held=outcome)
    before = rates.mean("k", "r")
    assert rates.cautious("k", "r") >= 0.0
    assert 0.0 < before < 1.0
    rates.record("k", "r", held=held)
    after = rates.mean("k", "r")
    assert (after > before) if held else (after < before)


def test_decision_weighs_saving_against_waste_floor_and_budget() -> None:
    policy = SpeculationPolicy()
    costs = SpeculationCosts(wait_s=600.0, work_s=600.0, budget_left_usd=10.0)
    yes = decide(policy, 0.8, costs)
    assert yes.speculate
    assert yes.expected_saving_s == 480.0
    assert yes.value_usd > 0
    assert not decide(policy, 0.3, costs).speculate  # below the floor
    broke = SpeculationCosts(wait_s=600.0, work_s=600.0, budget_left_usd=0.0)
    assert "budget" in decide(policy, 0.8, broke).reason
    cheap = SpeculationPolicy(usd_per_hour=0.1, usd_per_work_hour=10.0)
    assert "not positive" in decide(cheap, 0.6, costs).reason
    assert not decide(SpeculationPolicy(enabled=False), 0.9, costs).speculate

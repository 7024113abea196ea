"""The pure part of speculation: payloads, exact checks, the posterior and the decision."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from loomkin.core.speculation import (
    HitRates,
    SpeculationCosts,
    SpeculationPolicy,
    beta_cdf,
    budget_ramp,
    decide,
    handoff_payload,
    same_value,
    stake_room_s,
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
    costs = SpeculationCosts(saving_s=600.0, work_s=600.0, budget_left_usd=10.0)
    yes = decide(policy, 0.8, costs)
    assert yes.speculate
    assert yes.expected_saving_s == 480.0
    assert yes.value_usd > 0
    assert not decide(policy, 0.3, costs).speculate  # below the floor
    broke = SpeculationCosts(saving_s=600.0, work_s=600.0, budget_left_usd=0.0)
    assert "budget" in decide(policy, 0.8, broke).reason
    cheap = SpeculationPolicy(usd_per_hour=0.1, usd_per_work_hour=10.0)
    assert "not positive" in decide(cheap, 0.6, costs).reason
    assert not decide(SpeculationPolicy(enabled=False), 0.9, costs).speculate


def test_the_decision_carries_its_numbers() -> None:
    # p × saving at $20/h against (1 − p) × work at stake at $4/h, as the event records them.
    costs = SpeculationCosts(saving_s=900.0, work_s=360.0, budget_left_usd=1.5)
    d = decide(SpeculationPolicy(), 0.75, costs)
    assert d.speculate
    assert d.expected_saving_s == 675.0
    assert abs(d.expected_waste_usd - 0.25 * 360.0 / 3600.0 * 4.0) < 1e-12
    assert abs(d.value_usd - (675.0 / 3600.0 * 20.0 - d.expected_waste_usd)) < 1e-12
    assert (d.saving_if_held_s, d.at_stake_s, d.budget_left_usd) == (900.0, 360.0, 1.5)


def test_a_task_with_slack_is_never_speculated_on() -> None:
    costs = SpeculationCosts(saving_s=0.0, work_s=10.0, budget_left_usd=10.0)
    d = decide(SpeculationPolicy(), 0.99, costs)
    assert not d.speculate
    assert "slack" in d.reason


def test_the_floor_is_checked_at_the_hopeful_estimate_so_one_early_failure_does_not_stop() -> None:
    rates = HitRates()
    rates.record("k", "r", held=False)
    costs = SpeculationCosts(saving_s=600.0, work_s=100.0, budget_left_usd=10.0)
    policy = SpeculationPolicy()
    one = decide(policy, rates.mean("k", "r"), costs, p_high=rates.hopeful("k", "r"))
    assert rates.mean("k", "r") < policy.min_p <= rates.hopeful("k", "r")
    assert one.speculate
    rates.record("k", "r", held=False)
    two = decide(policy, rates.mean("k", "r"), costs, p_high=rates.hopeful("k", "r"))
    assert not two.speculate
    assert "floor" in two.reason


def test_the_budget_opens_as_guesses_hold() -> None:
    policy = SpeculationPolicy()  # ramp_holds = 2
    assert budget_ramp(policy, 0) == 1 / 3
    assert budget_ramp(policy, 1) == 2 / 3
    assert budget_ramp(policy, 2) == budget_ramp(policy, 50) == 1.0
    assert budget_ramp(SpeculationPolicy(ramp_holds=0), 0) == 1.0


@given(st.integers(0, 20), st.integers(0, 20), st.integers(0, 5))
def test_the_ramp_never_shrinks_and_never_exceeds_the_share(
    held: int, more: int, ramp_holds: int
) -> None:
    policy = SpeculationPolicy(ramp_holds=ramp_holds)
    assert 0.0 < budget_ramp(policy, held) <= budget_ramp(policy, held + more) <= 1.0


@given(st.lists(st.booleans(), max_size=30))
def test_the_estimates_are_ordered(outcomes: list[bool]) -> None:
    rates = HitRates()
    for held in outcomes:
        rates.record("k", "r", held=held)
    assert 0.0 <= rates.cautious("k", "r") <= rates.mean("k", "r") <= rates.hopeful("k", "r") <= 1.0
    assert rates.held() == sum(outcomes)


def test_a_probe_takes_a_task_with_slack_within_the_budget_and_above_the_floor() -> None:
    policy = SpeculationPolicy()
    probe = SpeculationCosts(saving_s=0.0, work_s=100.0, budget_left_usd=1.0, probe=True)
    yes = decide(policy, 0.5, probe)
    assert yes.speculate
    assert "probe" in yes.reason
    assert yes.value_usd < 0  # its worth is what it teaches, not time saved
    poor = SpeculationCosts(saving_s=0.0, work_s=100.0, budget_left_usd=0.0, probe=True)
    assert "budget" in decide(policy, 0.5, poor).reason
    assert "floor" in decide(policy, 0.2, probe, p_high=0.3).reason


def test_a_bet_bigger_than_may_be_lost_outright_is_not_placed_after_one_lucky_hold() -> None:
    # flask, 4 agents, P = 0.2: a probe of 2 % of the work held by chance; the budget, priced
    # at the posterior mean (2/3), then had room for the final integrate (8 % of the work),
    # whose guess failed: 0.075 of all work wasted. At face value it does not fit.
    policy = SpeculationPolicy()
    work = 10_000.0
    rates = HitRates()
    rates.record("blocks", "coder", held=True)
    room = stake_room_s(policy, rates, work_s=work, held_s=200.0, wasted_s=0.0, exposed_s=0.0)
    assert math.isclose(room, 400.0)  # 2 % of the work, plus the 200 s the lucky probe did ahead
    big = SpeculationCosts(saving_s=400.0, work_s=800.0, budget_left_usd=1.0, stake_room_s=room)
    p = rates.mean("blocks", "coder")
    assert (1 - p) * 800.0 / 3600.0 * policy.usd_per_work_hour < 1.0  # the budget would allow it
    refused = decide(policy, p, big)
    assert not refused.speculate
    assert refused.too_big  # worth it: it may fit later, nearer its check
    assert "outright" in refused.reason
    small = SpeculationCosts(saving_s=400.0, work_s=300.0, budget_left_usd=1.0, stake_room_s=room)
    assert decide(policy, p, small).speculate


def test_the_stake_limit_opens_once_a_low_hit_rate_is_unlikely_and_closes_with_waste() -> None:
    policy = SpeculationPolicy()
    rates = HitRates()

    def room(held_s: float = 0.0, wasted_s: float = 0.0, exposed_s: float = 0.0) -> float:
        return stake_room_s(
            policy, rates, work_s=10_000.0, held_s=held_s, wasted_s=wasted_s, exposed_s=exposed_s
        )

    rates.record("blocks", "coder", held=True)
    assert math.isclose(rates.doubt(policy.min_p), 0.25)  # one in one: P = 0.2 does it 1 in 5
    assert math.isclose(room(), 200.0)  # stake_share of the work only
    rates.record("other", "tester", held=True)  # pooled at full weight: two holds in two
    assert math.isclose(rates.doubt(policy.min_p), 0.125)
    assert math.isclose(room(), 800.0)  # stake_share + budget_share of the work
    assert math.isclose(room(held_s=100.0, wasted_s=300.0, exposed_s=250.0), 350.0)
    rates.record("blocks", "coder", held=False)  # two in three: it closes again
    assert math.isclose(room(), 200.0)


@given(
    st.floats(0.0, 1.0),
    st.floats(0.1, 30.0),
    st.floats(0.1, 30.0),
)
def test_the_beta_cdf_matches_its_closed_forms(x: float, a: float, b: float) -> None:
    assert math.isclose(beta_cdf(x, a, 1.0), x**a, abs_tol=1e-9)
    assert math.isclose(beta_cdf(x, 1.0, b), 1.0 - (1.0 - x) ** b, abs_tol=1e-9)
    # Symmetry, at two points that sum to exactly 1 (1 - x alone rounds for a tiny x).
    y = 1.0 - x
    x = 1.0 - y
    assert math.isclose(beta_cdf(x, a, b), 1.0 - beta_cdf(y, b, a), abs_tol=1e-9)

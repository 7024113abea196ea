"""The autoscaler's pure policy: hysteresis, cooldown, bounds, budget, roles, retirement."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loomkin.coordination.autoscale import (
    AutoscaleSettings,
    TeamBounds,
    TeamLoad,
    check_bounds,
    decide,
    ratio_of,
    team_scale_event,
)
from loomkin.errors import UserError
from loomkin.ids import SessionId, TeamId

SETTINGS = AutoscaleSettings(
    enabled=True, window_s=30, cooldown_s=60, max_agents=8, retire_after_s=300
)
BOUNDS = TeamBounds(min_agents=1, max_agents=8)


def _load(**kw: object) -> TeamLoad:
    base = TeamLoad(now=100.0, ready_roles=("coder",) * 5, idle=(), size=1, above_since=60.0)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_ratio_is_ready_over_idle_and_unbounded_with_nobody_idle() -> None:
    assert ratio_of(0, 0) == 0.0
    assert ratio_of(4, 2) == 2.0
    assert ratio_of(3, 0) is None


def test_spawns_for_the_backlog_once_the_window_has_passed() -> None:
    decision = decide(_load(), SETTINGS, BOUNDS)
    assert decision is not None
    assert decision.action == "spawn"
    assert decision.roles == ("coder",) * 5
    assert decision.ready == 5
    assert decision.idle == 0
    assert decision.ratio is None
    assert "above 1 for 40s" in decision.reason


def test_no_spawn_inside_the_window_or_the_cooldown() -> None:
    assert decide(_load(above_since=90.0), SETTINGS, BOUNDS) is None
    assert decide(_load(last_spawn=50.0), SETTINGS, BOUNDS) is None
    assert decide(_load(last_spawn=30.0), SETTINGS, BOUNDS) is not None


def test_no_spawn_when_idle_agents_cover_the_backlog() -> None:
    load = _load(ready_roles=("coder",) * 2, idle=("a", "b"), size=3)
    assert decide(load, SETTINGS, BOUNDS) is None


def test_onboarding_agents_count_as_capacity_on_its_way() -> None:
    assert decide(_load(onboarding=5, size=6), SETTINGS, BOUNDS) is None
    decision = decide(_load(onboarding=3, size=4), SETTINGS, BOUNDS)
    assert decision is not None
    assert len(decision.roles) == 2


def test_the_ceiling_turns_a_spawn_into_a_hold_with_its_reason() -> None:
    decision = decide(_load(size=8), SETTINGS, BOUNDS)
    assert decision is not None
    assert decision.action == "hold"
    assert "size bound" in decision.reason
    partial = decide(_load(size=6), SETTINGS, BOUNDS)
    assert partial is not None
    assert len(partial.roles) == 2


def test_the_budget_limits_spawns_at_the_projected_cost() -> None:
    budget = replace(SETTINGS, session_budget_usd=1.0, agent_cost_usd=0.25)
    decision = decide(_load(spent_usd=0.5, agents_ever=1), budget, BOUNDS)
    # history says 0.5 per agent so far: the 0.5 left pays for one more
    assert decision is not None
    assert decision.action == "spawn"
    assert len(decision.roles) == 1
    assert decision.projected_usd == 0.5
    assert decision.budget_left_usd == 0.5
    broke = decide(_load(spent_usd=1.0, agents_ever=1), budget, BOUNDS)
    assert broke is not None
    assert broke.action == "hold"
    assert "budget" in broke.reason


def test_roles_follow_the_tasks_no_idle_agent_will_take() -> None:
    load = _load(ready_roles=("coder", "tester", "", "reviewer"), idle=("a",), size=2)
    decision = decide(load, SETTINGS, BOUNDS)
    assert decision is not None
    assert decision.roles == ("tester", "coder", "reviewer")


def test_retires_agents_idle_too_long_when_nothing_waits_but_keeps_the_floor() -> None:
    load = _load(
        now=1000.0,
        ready_roles=(),
        idle=("a", "b", "c"),
        idle_since={"a": 100.0, "b": 600.0, "c": 900.0},
        size=3,
        above_since=None,
    )
    decision = decide(load, SETTINGS, BOUNDS)
    assert decision is not None
    assert decision.action == "retire"
    assert decision.retire == ("a", "b")
    floor = decide(load, SETTINGS, TeamBounds(min_agents=3, max_agents=8))
    assert floor is None


def test_no_retirement_while_work_waits() -> None:
    load = _load(now=1000.0, idle=("a",), idle_since={"a": 0.0}, size=2, ready_roles=("coder",))
    decision = decide(load, SETTINGS, BOUNDS)
    assert decision is None or decision.action != "retire"


def test_a_pin_is_reached_at_once_both_ways() -> None:
    pin = TeamBounds(min_agents=0, max_agents=8, pinned=3)
    grow = decide(_load(ready_roles=(), size=1, above_since=None), SETTINGS, pin)
    assert grow is not None
    assert grow.action == "spawn"
    assert len(grow.roles) == 2
    shrink = decide(_load(ready_roles=(), idle=("a", "b"), size=5), SETTINGS, pin)
    assert shrink is not None
    assert shrink.action == "retire"
    assert shrink.retire == ("a", "b")


@given(
    ready=st.integers(0, 40),
    idle=st.integers(0, 10),
    busy=st.integers(0, 10),
    onboarding=st.integers(0, 5),
    low=st.integers(0, 6),
    high=st.integers(1, 12),
    held=st.floats(0, 100),
    idle_for=st.floats(0, 1000),
)
def test_never_above_the_ceiling_nor_below_the_floor(
    ready: int,
    idle: int,
    busy: int,
    onboarding: int,
    low: int,
    high: int,
    held: float,
    idle_for: float,
) -> None:
    low = min(low, high)
    bounds = TeamBounds(min_agents=low, max_agents=high)
    ids = tuple(f"a{i}" for i in range(idle))
    size = idle + busy + onboarding
    load = TeamLoad(
        now=1000.0,
        ready_roles=("coder",) * ready,
        idle=ids,
        idle_since=dict.fromkeys(ids, 1000.0 - idle_for),
        onboarding=onboarding,
        size=size,
        above_since=1000.0 - held,
    )
    decision = decide(load, SETTINGS, bounds)
    if decision is None:
        return
    if decision.action == "spawn":
        assert size + len(decision.roles) <= high
        assert len(decision.roles) <= ready  # never more agents than work waiting
    if decision.action == "retire":
        assert size - len(decision.retire) >= low
        assert set(decision.retire) <= set(ids)
        assert len(decision.retire) <= idle - ready  # never an agent the waiting work needs


def test_bounds_are_checked_with_clear_errors() -> None:
    with pytest.raises(UserError, match="min 5 is above max 2"):
        check_bounds(min_agents=5, max_agents=2, pinned=None, limit=8)
    with pytest.raises(UserError, match="not both"):
        check_bounds(min_agents=1, max_agents=None, pinned=2, limit=8)
    with pytest.raises(UserError, match="above the limit of 8"):
        check_bounds(min_agents=None, max_agents=9, pinned=None, limit=8)
    with pytest.raises(UserError, match="say what to set"):
        team_scale_event(session_id=SessionId("s"), team_id=TeamId("t"), limit=8, by="u")
    event = team_scale_event(
        session_id=SessionId("s"), team_id=TeamId("t"), pinned=3, limit=8, by="lead"
    )
    assert event.pinned == 3
    assert event.by == "lead"


def test_warm_spares_add_headroom_and_stay_while_work_is_to_come() -> None:
    warm = replace(SETTINGS, warm_spares=1)
    grow = decide(_load(upcoming=3), warm, BOUNDS)
    assert grow is not None
    assert len(grow.roles) == 6  # five ready tasks and one spare
    assert decide(_load(upcoming=0), warm, BOUNDS).roles == ("coder",) * 5  # type: ignore[union-attr]
    idle = _load(
        now=1000.0,
        ready_roles=(),
        idle=("a", "b"),
        idle_since={"a": 0.0, "b": 0.0},
        size=3,
        above_since=None,
        upcoming=2,
    )
    kept = decide(idle, warm, BOUNDS)
    assert kept is not None
    assert kept.retire == ("a",)  # one of the two stays warm for the work to come
    gone = decide(replace(idle, upcoming=0), warm, BOUNDS)
    assert gone is not None
    assert gone.retire == ("a", "b")


def test_tasks_ready_soon_count_as_work_waiting_for_growth() -> None:
    grow = decide(_load(ready_roles=("coder",) * 2, soon=3), SETTINGS, BOUNDS)
    assert grow is not None
    assert grow.action == "spawn"
    assert len(grow.roles) == 5  # two ready now, three whose blockers are in progress
    assert "3 ready soon" in grow.reason
    only_soon = decide(_load(ready_roles=(), soon=2), SETTINGS, BOUNDS)
    assert only_soon is not None
    assert only_soon.roles == ("coder", "coder")
    assert decide(_load(ready_roles=(), soon=0), SETTINGS, BOUNDS) is None


def test_an_idle_agent_a_task_will_want_soon_is_kept() -> None:
    idle = _load(
        now=1000.0,
        ready_roles=(),
        idle=("a", "b"),
        idle_since={"a": 0.0, "b": 0.0},
        size=3,
        above_since=None,
        soon=1,
    )
    kept = decide(idle, SETTINGS, BOUNDS)
    assert kept is not None
    assert kept.retire == ("a",)  # b stays for the task whose blocker is in progress
    assert decide(replace(idle, soon=2), SETTINGS, BOUNDS) is None


def test_surplus_agents_beyond_the_work_to_come_retire_after_half_the_wait() -> None:
    idle = _load(
        now=1000.0,
        ready_roles=(),
        idle=("a", "b"),
        idle_since={"a": 800.0, "b": 800.0},  # 200 s idle: past half of 300, not all of it
        size=3,
        above_since=None,
        upcoming=1,
    )
    decision = decide(idle, SETTINGS, BOUNDS)
    assert decision is not None
    assert decision.retire == ("a",)  # one agent is more than the one task still to come
    assert decide(replace(idle, upcoming=2), SETTINGS, BOUNDS) is None

"""The autoscaler's policy, pure: from what a team looks like now to what to do, and why.

How this works and why:

* **Backlog and capacity.** ``ready`` counts the team's tasks that could be worked now:
  unowned and ready, or queued on a busy agent (an idle agent could steal them). ``idle``
  counts worker agents with nothing to do, agents still reading their onboarding brief
  included (capacity already on its way: counting it stops a second spawn for the same work).
* **Grow** when ``ready ÷ idle`` has stayed above ``scale_up_ratio`` for ``window_s`` (the
  caller tracks since when; a burst the scheduler clears by itself spawns nobody), the last
  spawn is ``cooldown_s`` old, and the team is below its ceiling. The step brings ``idle`` up to
  ``ready ÷ scale_up_ratio``, within the ceiling, ``max_spawn_step`` and what the budget can
  pay at the projected cost of an agent. Roles follow the backlog: the tasks that no idle agent
  will take, most urgent first, each asks for its own role.
* **Warm spares.** With ``warm_spares`` > 0 and tasks still to become ready, a spawn adds that
  many agents beyond the backlog and retirement keeps that many idle, so a task that becomes
  ready (one on the critical path, say) starts at once instead of after an onboarding.
* **Ready soon.** With ``anticipate``, ``soon`` counts the tasks whose every unmet blocker is
  a milestone of a task in progress: they join ``ready`` for growth, so their agents onboard
  while the milestone is reached instead of after it (on short graphs one onboarding on the
  critical path is most of the gap to a fixed team), and as many idle agents are kept for them.
* **Shrink** an agent idle for ``retire_after_s`` while no work waits, never below the floor;
  an agent beyond the tasks still to come (``upcoming``) goes after half that wait, since the
  work left cannot use every idle agent again.
  A pinned team is brought to its pin at once either way; a team above a lowered ceiling
  loses its idle agents down to it at once.
* A wanted spawn that a bound refuses is a ``hold`` with its reason (once per change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.core.events.autoscale import ScaleAction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.coordination.autoscale.settings import AutoscaleSettings, TeamBounds

__all__ = ["Decision", "TeamLoad", "decide", "ratio_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TeamLoad:
    """One team as the policy sees it, at ``now``."""

    now: float
    ready_roles: tuple[str, ...]
    """The role of each workable task (``""`` when it names none), most urgent first."""
    idle: tuple[str, ...]
    """Ids of idle worker agents (not onboarding), longest idle first."""
    idle_since: dict[str, float] = field(default_factory=dict)
    onboarding: int = 0
    size: int = 0
    """Worker agents of the team (retired ones excluded)."""
    above_since: float | None = None
    """Since when the ratio has been above the threshold (``None``: it is not)."""
    last_spawn: float | None = None
    upcoming: int = 0
    """Unowned tasks of the team not ready yet (work still to come)."""
    soon: int = 0
    """Tasks not ready yet whose every unmet blocker is in progress (ready soon)."""
    spent_usd: float = 0.0
    agents_ever: int = 0
    """Worker agents the session has had (for the cost per agent so far)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to do now: spawn ``roles``, retire ``retire``, or hold; with the figures."""

    action: ScaleAction
    reason: str
    roles: tuple[str, ...] = ()
    retire: tuple[str, ...] = ()
    ready: int = 0
    idle: int = 0
    ratio: float | None = None
    projected_usd: float = 0.0
    budget_left_usd: float | None = None


def ratio_of(ready: int, idle: int) -> float | None:
    """``ready ÷ idle``; ``None`` when work waits and nobody is idle; 0 with no work."""
    if ready == 0:
        return 0.0
    return None if idle == 0 else ready / idle


def _text(ratio: float | None) -> str:
    return "unbounded (nobody idle)" if ratio is None else f"{ratio:.2f}"


def above(load: TeamLoad, settings: AutoscaleSettings) -> bool:
    """Whether the ratio is above the threshold now."""
    r = ratio_of(len(load.ready_roles) + load.soon, len(load.idle) + load.onboarding)
    return r is None or r > settings.scale_up_ratio


def decide(load: TeamLoad, settings: AutoscaleSettings, bounds: TeamBounds) -> Decision | None:
    """The decision for one team now, or ``None`` when nothing is to be done."""
    ready = len(load.ready_roles)
    idle = len(load.idle) + load.onboarding
    ratio = ratio_of(ready + load.soon, idle)
    figures = {"ready": ready, "idle": idle, "ratio": ratio}
    unneeded = load.idle[ready:]  # idle agents the work waiting will not use
    if load.size > bounds.ceiling and unneeded:
        extra = load.size - bounds.ceiling
        return Decision(
            action="retire",
            retire=tuple(unneeded[:extra]),
            reason=f"the team has {load.size} agents and its size is {bounds.describe()}",
            **figures,  # type: ignore[arg-type]
        )
    grow = _grow(load, settings, bounds, ready, idle, ratio)
    if grow is not None:
        return grow
    return _shrink(load, settings, bounds, ready, idle, ratio)


def _grow(
    load: TeamLoad,
    settings: AutoscaleSettings,
    bounds: TeamBounds,
    ready: int,
    idle: int,
    ratio: float | None,
) -> Decision | None:
    pinned_short = bounds.pinned is not None and load.size < bounds.pinned
    if pinned_short:
        assert bounds.pinned is not None
        want = bounds.pinned - load.size
        why = f"the team is pinned at {bounds.pinned} agents and has {load.size}"
    else:
        if load.above_since is None or not above(load, settings):
            return None
        held = load.now - load.above_since
        if held < settings.window_s:
            return None
        if load.last_spawn is not None and load.now - load.last_spawn < settings.cooldown_s:
            return None
        headroom = settings.warm_spares if load.upcoming else 0
        want = math.ceil((ready + load.soon) / settings.scale_up_ratio) + headroom - idle
        soon = f" (+{load.soon} ready soon: their blockers are in progress)" if load.soon else ""
        why = (
            f"{ready} ready task(s){soon} for {idle} idle agent(s): ratio {_text(ratio)} above "
            f"{settings.scale_up_ratio:g} for {held:.0f}s (window {settings.window_s:g}s)"
        )
    room = bounds.ceiling - load.size
    per_agent = _projected(load, settings)
    left = (
        None
        if settings.session_budget_usd is None
        else max(0.0, settings.session_budget_usd - load.spent_usd)
    )
    affordable = want if left is None else int(left // per_agent) if per_agent > 0 else want
    n = min(want, room, settings.max_spawn_step, affordable)
    figures = {"ready": ready, "idle": idle, "ratio": ratio, "budget_left_usd": left}
    if n <= 0:
        if want <= 0:
            return None
        blocker = (
            f"the team is at its size bound ({bounds.describe()}, {load.size} agents)"
            if room <= 0
            else f"the budget left (${left:.2f}) does not cover one more agent "
            f"(projected ${per_agent:.2f})"
        )
        return Decision(action="hold", reason=f"{why}; no spawn: {blocker}", **figures)  # type: ignore[arg-type]
    roles = _roles(load, settings, idle, n)
    return Decision(
        action="spawn",
        roles=roles,
        projected_usd=round(per_agent * n, 4),
        reason=f"{why}; spawning {n} ({bounds.describe()}, projected ${per_agent:.2f} each)",
        **figures,  # type: ignore[arg-type]
    )


def _projected(load: TeamLoad, settings: AutoscaleSettings) -> float:
    """Expected cost of one more agent: the session's cost per agent so far, or the setting."""
    if load.agents_ever and load.spent_usd > 0:
        return max(settings.agent_cost_usd, load.spent_usd / load.agents_ever)
    return settings.agent_cost_usd


def _roles(load: TeamLoad, settings: AutoscaleSettings, idle: int, n: int) -> tuple[str, ...]:
    """Roles of the tasks no idle agent will take, most urgent first (then the default)."""
    uncovered = [r or settings.default_role for r in load.ready_roles[idle:]]
    uncovered += [settings.default_role] * n
    return tuple(uncovered[:n])


def _shrink(
    load: TeamLoad,
    settings: AutoscaleSettings,
    bounds: TeamBounds,
    ready: int,
    idle: int,
    ratio: float | None,
) -> Decision | None:
    if ready > 0 or not load.idle:
        return None
    spare = load.size - bounds.floor
    if load.upcoming:  # work is still to come: keep a warm agent to start it without a spawn
        spare = min(spare, len(load.idle) - settings.warm_spares)
    # an idle agent a task will want soon (its blockers in progress) is kept: retiring it
    # now and spawning another then costs an onboarding on that task's path
    spare = min(spare, len(load.idle) - load.soon)
    # idle agents beyond the work still to come will not all be needed again: those go after
    # half the wait (the longest idle first), the rest after the full one
    surplus = max(0, len(load.idle) - load.upcoming)
    stale = [
        a
        for i, a in enumerate(load.idle)
        if load.now - load.idle_since.get(a, load.now) >= _retire_after(settings, i < surplus)
    ]
    doomed = tuple(stale[: max(0, spare)])
    if not doomed:
        return None
    return Decision(
        action="retire",
        retire=doomed,
        ready=ready,
        idle=idle,
        ratio=ratio,
        reason=(
            f"no work waiting and {len(doomed)} agent(s) idle for at least "
            f"{settings.retire_after_s:g}s (the team keeps {bounds.floor})"
        ),
    )


def _retire_after(settings: AutoscaleSettings, surplus: bool) -> float:
    """How long an idle agent waits to be retired (half as long when it is surplus)."""
    return settings.retire_after_s / 2 if surplus else settings.retire_after_s


def deadline(load: TeamLoad, settings: AutoscaleSettings) -> float | None:
    """The next time the decision may change with no new event (for the caller's timer)."""
    times: list[float] = []
    if load.above_since is not None:
        times.append(load.above_since + settings.window_s)
        if load.last_spawn is not None:
            times.append(load.last_spawn + settings.cooldown_s)
    for a in load.idle:
        since = load.idle_since.get(a, load.now)
        times += [since + _retire_after(settings, True), since + settings.retire_after_s]
    future = [t for t in times if t > load.now]
    return min(future, default=None)


def joined(roles: Sequence[str]) -> str:
    """``"coder"`` or ``"coder, tester"``: the distinct roles, in order."""
    return ", ".join(dict.fromkeys(roles))

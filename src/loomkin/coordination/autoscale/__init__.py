"""Adaptive teams (SPEC §3.10): the autoscaler, a team's bounds, capacity rebalancing.

* :mod:`.settings`: the thresholds (``[autoscale]``) and a team's bounds (``team_scale``).
* :mod:`.policy`: the pure decision from a team's load (ready ÷ idle, hysteresis, cooldown,
  size bounds, budget) to spawn, retire or hold, with the reason.
* :mod:`.brief`: the onboarding brief and a retired agent's legacy in the team's knowledge.
* :mod:`.service`: the projection and loop that decide and append (spawns go through an
  :class:`AgentPlacer` port: where an agent runs is decided elsewhere).
* :mod:`.rebalance`: moving ready tasks to sibling teams whose agents sit idle.

Work stealing itself lives with the tasks (:mod:`loomkin.tasks.stealing`).
"""

from loomkin.coordination.autoscale.policy import Decision, TeamLoad, decide, ratio_of
from loomkin.coordination.autoscale.service import AgentPlacer, Autoscaler, TeamScale
from loomkin.coordination.autoscale.settings import (
    AutoscaleSettings,
    TeamBounds,
    check_bounds,
    team_scale_event,
)

__all__ = [
    "AgentPlacer",
    "AutoscaleSettings",
    "Autoscaler",
    "Decision",
    "TeamBounds",
    "TeamLoad",
    "TeamScale",
    "check_bounds",
    "decide",
    "ratio_of",
    "team_scale_event",
]

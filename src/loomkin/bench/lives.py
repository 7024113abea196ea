"""Agent lives in a swarm run, from its log: agent-seconds, peak size, spawns, retirements.

An agent lives from its ``AgentSpawned`` to its retirement (status ``done``) or the end of
the run (the last task's completion); coordination roles are not counted (the benchmark
spawns none). Steals are the ``TaskClaimed`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.core.events import AgentSpawned, AgentStatusChanged, ScaleDecided, TaskClaimed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events import RecordedEvent

__all__ = ["Lives"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lives:
    """What the log says about the agents of one run."""

    agent_seconds: float
    peak: int
    spawns: int
    retires: int
    steals: int

    @classmethod
    def of(cls, history: Sequence[RecordedEvent], *, end: float) -> Lives:
        """Count the lives in ``history``, cutting every life at ``end``."""
        born: dict[str, float] = {}
        died: dict[str, float] = {}
        spawns = retires = steals = 0
        for r in history:
            match r.event:
                case AgentSpawned(agent_id=aid):
                    born[aid] = r.recorded_at
                case AgentStatusChanged(agent_id=aid, status="done") if aid not in died:
                    died[aid] = r.recorded_at
                case ScaleDecided(action="spawn", agent_ids=ids):
                    spawns += len(ids)
                case ScaleDecided(action="retire", agent_ids=ids):
                    retires += len(ids)
                case TaskClaimed():
                    steals += 1
                case _:
                    pass
        spans = [(t, min(died.get(a, end), end)) for a, t in born.items()]
        seconds = sum(max(0.0, stop - start) for start, stop in spans)
        points = sorted([(s, 1) for s, e in spans if e > s] + [(e, -1) for s, e in spans if e > s])
        alive = peak = 0
        for _, step in points:
            alive += step
            peak = max(peak, alive)
        return cls(agent_seconds=seconds, peak=peak, spawns=spawns, retires=retires, steals=steals)

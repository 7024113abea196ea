"""Placement: which worker gets a session's agents. Pure functions, no I/O.

Kept apart so that anything that needs a worker (opening a session, taking over a dead
worker's sessions, an autoscaler's spawns) asks the same question and gets the same answer
from the same figures: the least-loaded worker that accepts work, load being the agents it
hosts relative to its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loomkin.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

__all__ = ["NoWorkers", "WorkerLoad", "place", "placement_order"]


class NoWorkers(UserError):
    """No live worker accepts work (start one with ``loomkin worker``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerLoad:
    """What a worker last reported about itself."""

    worker_id: str
    agents: int = 0
    """Agents of the sessions it hosts."""
    sessions: int = 0
    """Sessions it hosts."""
    capacity: int = 100
    """Agents it is meant to host at most (a weight, not a hard limit)."""
    accepting: bool = True
    """False while it shuts down: it gets no new work."""

    def load(self, extra_agents: int = 0) -> float:
        """Hosted agents (plus ``extra_agents``) per unit of capacity."""
        return (self.agents + extra_agents) / max(1, self.capacity)


def placement_order(
    workers: Sequence[WorkerLoad], *, agents: int = 1, exclude: Collection[str] = ()
) -> list[WorkerLoad]:
    """The accepting workers, best first, for work of ``agents`` agents.

    Ordered by the load they would have with the work, then by sessions hosted, then by id
    (so every process that sees the same figures ranks the workers the same way).
    """
    if agents < 0:
        raise UserError(f"a placement needs a number of agents >= 0, got {agents}")
    candidates = [w for w in workers if w.accepting and w.worker_id not in exclude]
    return sorted(candidates, key=lambda w: (w.load(agents), w.sessions, w.worker_id))


def place(
    workers: Sequence[WorkerLoad], *, agents: int = 1, exclude: Collection[str] = ()
) -> WorkerLoad:
    """The least-loaded accepting worker for work of ``agents`` agents.

    Raises:
        NoWorkers: no worker accepts work (none live, all shutting down, or all excluded).
    """
    order = placement_order(workers, agents=agents, exclude=exclude)
    if not order:
        raise NoWorkers(
            "no live worker accepts work on this cluster: start one with "
            "`loomkin worker --store URL --bus nats://HOST:4222`"
        )
    return order[0]

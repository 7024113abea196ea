"""A run's exit status, read from its events: 1 when an agent's work ended in an error.

A script or a CI job running ``loomkin run`` needs to tell a goal the agents reached from
one they could not work on (no model server, a rejected key, a model that answered nothing
twice). The log says it: an agent whose last loop ended with ``outcome="error"`` stopped on
a failure nobody retried after. One whose loop failed and then ran again to an answer is
fine. Cancelled, paused and budget-stopped loops are what someone chose, not failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import AgentSpawned, LoopFinished

if TYPE_CHECKING:
    from collections.abc import Iterable

    from loomkin.core.events import Event

__all__ = ["failed_agents"]


def failed_agents(events: Iterable[Event]) -> list[tuple[str, str]]:
    """``(agent name, why)`` of every agent whose last loop in ``events`` ended in an error."""
    names: dict[str, str] = {}
    last: dict[str, LoopFinished] = {}
    for event in events:
        if isinstance(event, AgentSpawned):
            names[event.agent_id] = event.name
        elif isinstance(event, LoopFinished):
            last[event.agent_id] = event
    return [
        (names.get(agent_id, agent_id), finished.text)
        for agent_id, finished in last.items()
        if finished.outcome == "error"
    ]

"""The session's decision graph as the agents query it: every ``DecisionLogged``, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.core.events import DecisionLogged

if TYPE_CHECKING:
    from collections.abc import Sequence

    from loomkin.core.events import RecordedEvent

__all__ = ["DecisionLog"]


class DecisionLog:
    """Goals, options, decisions and outcomes of one session (a projection of its log)."""

    def __init__(self) -> None:
        self._nodes: list[DecisionLogged] = []

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        if isinstance(recorded.event, DecisionLogged):
            self._nodes.append(recorded.event)

    def caught_up(self) -> None:
        """Nothing to act on."""

    def nodes(self) -> Sequence[DecisionLogged]:
        """Every node logged so far, oldest first."""
        return tuple(self._nodes)
